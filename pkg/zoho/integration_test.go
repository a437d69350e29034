package zoho_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

func configure(t *testing.T, env map[string]string) (*zoho.Settings, error) {
	t.Helper()
	in := zoho.Integration()
	if in.Name != "zoho" || in.EnabledBy != "ZOHO_SCREEN_NAME" {
		t.Fatalf("integration %q enabled by %q", in.Name, in.EnabledBy)
	}
	p, err := in.Configure(integration.Env{Getenv: func(k string) string { return env[k] }})
	return p.(*zoho.Settings), err
}

func TestIntegrationSettings(t *testing.T) {
	env := map[string]string{"ZOHO_SCREEN_NAME": "acme", "ZOHO_REGION": "ca", "ZOHO_APP_ID": "1", "ZOHO_DEPARTMENT_ID": "2", "ZOHO_ORG_ID": "3",
		"ZOHO_TOKEN_SECRET_ARN": "arn:token"}
	s, err := configure(t, env)
	if err != nil || s.Region != "ca" || s.ScreenName != "acme" || s.TokenSecretARN != "arn:token" {
		t.Fatalf("settings %+v, %v", s, err)
	}
	env["ZOHO_REGION"], env["ZOHO_ORG_ID"], env["ZOHO_SALESIQ_URL"] = "mars", "", "http://salesiq.example.com"
	_, err = configure(t, env)
	for _, want := range []string{`unknown Zoho region "mars"`, "ZOHO_ORG_ID is required", "ZOHO_SALESIQ_URL must be an absolute https URL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not mention %q: %v", want, err)
		}
	}
	env["ZOHO_REGION"] = ""
	if _, err = configure(t, env); err == nil || !strings.Contains(err.Error(), "ZOHO_REGION") {
		t.Fatalf("an empty region must not default silently: %v", err)
	}
}

func TestIntegrationSecret(t *testing.T) {
	s, _ := configure(t, map[string]string{"ZOHO_SCREEN_NAME": "acme", "ZOHO_REGION": "us", "ZOHO_APP_ID": "1", "ZOHO_DEPARTMENT_ID": "2", "ZOHO_ORG_ID": "3"})
	block := func(v zoho.ConfigSecret) json.RawMessage { raw, _ := json.Marshal(v); return raw }
	if err := s.CheckSecret(block(zoho.ConfigSecret{ClientID: "id", ClientSecret: "secret"}), false); err != nil {
		t.Fatal(err)
	}
	err := s.CheckSecret(block(zoho.ConfigSecret{WebhookPublicKeys: []string{"a", "b", "c"}}), false)
	for _, want := range []string{"zoho.clientId and zoho.clientSecret are required", "zoho.webhookPublicKeys takes at most two keys"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not mention %q: %v", want, err)
		}
	}
	// The webhooks function holds the public keys only.
	if err := s.CheckSecret(block(zoho.ConfigSecret{}), true); err != nil {
		t.Fatalf("ingress block: %v", err)
	}
}
