package config_test

import (
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/config"
)

func TestPublicURL(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"", "", ""},
		{"https://abc.execute-api.eu-west-1.amazonaws.com/", "https://abc.execute-api.eu-west-1.amazonaws.com", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"http://bridge.example.com", "", "PUBLIC_URL"},
		{"not a url", "", "PUBLIC_URL"},
	} {
		c, err := config.Env(func(k string) string {
			if k == "PUBLIC_URL" {
				return tt.in
			}
			return ""
		}, nil)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v", tt.in, err)
			}
			continue
		}
		if err != nil || c.PublicURL != tt.want {
			t.Errorf("%q: %q, %v", tt.in, c.PublicURL, err)
		}
	}
}
