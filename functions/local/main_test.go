package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServeRefusesAnIncompleteConfiguration(t *testing.T) {
	env := map[string]string{"HITL_STORE_PATH": t.TempDir() + "/b.db"}
	err := run(t.Context(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "HITL_SECRET_JSON") {
		t.Fatalf("err = %v", err)
	}
	env["HITL_SECRET_JSON"] = `{"botApiKeys":["short"]}`
	err = run(t.Context(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no provider is configured") || !strings.Contains(err.Error(), "botApiKeys[0]") {
		t.Fatalf("err = %v", err)
	}
}

func TestServerBoundsSlowAndIdleClients(t *testing.T) {
	s := newServer("127.0.0.1:0", http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("timeouts: header %v, read %v, idle %v", s.ReadHeaderTimeout, s.ReadTimeout, s.IdleTimeout)
	}
}
