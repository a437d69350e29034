package httplog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/httplog"
)

// A request is logged by its route pattern and status, never by its path.
func TestLogsRouteAndStatusNotPath(t *testing.T) {
	var buf bytes.Buffer
	mux := http.NewServeMux()
	mux.HandleFunc("POST /botpress/{token}/ping", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := httplog.Handler(slog.New(slog.NewJSONHandler(&buf, nil)), mux)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/botpress/s3cret-path-token/ping", nil))
	var line struct {
		Route  string
		Status int
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line.Route != "POST /botpress/{token}/ping" || line.Status != http.StatusTeapot || strings.Contains(buf.String(), "s3cret") {
		t.Fatalf("logged %s", buf.String())
	}
}
