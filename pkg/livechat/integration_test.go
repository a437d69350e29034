package livechat_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
)

func configure(t *testing.T, env map[string]string) (*livechat.Settings, error) {
	t.Helper()
	in := livechat.Integration()
	if in.Name != "livechat" || in.EnabledBy != "LIVECHAT_ORGANIZATION_ID" {
		t.Fatalf("integration %q enabled by %q", in.Name, in.EnabledBy)
	}
	p, err := in.Configure(integration.Env{Getenv: func(k string) string { return env[k] }})
	return p.(*livechat.Settings), err
}

func TestIntegrationSettings(t *testing.T) {
	env := map[string]string{"LIVECHAT_ORGANIZATION_ID": "org-1", "LIVECHAT_CLIENT_ID": "client-1", "LIVECHAT_GROUP_ID": "2",
		"LIVECHAT_REDIRECT_URI": "https://bot.example.com/"}
	s, err := configure(t, env)
	if err != nil || s.GroupID != 2 || s.APIURL != "https://api.livechatinc.com/v3.6" || s.AccountsURL != "https://accounts.livechat.com" {
		t.Fatalf("settings %+v, %v", s, err)
	}
	env["LIVECHAT_GROUP_ID"], env["LIVECHAT_CLIENT_ID"], env["LIVECHAT_REDIRECT_URI"] = "abc", "", ""
	env["LIVECHAT_API_URL"] = "http://api.example.com"
	_, err = configure(t, env)
	for _, want := range []string{"LIVECHAT_GROUP_ID", "LIVECHAT_CLIENT_ID is required", "LIVECHAT_REDIRECT_URI is required", "LIVECHAT_API_URL must be an absolute https URL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not mention %q: %v", want, err)
		}
	}
}

func TestIntegrationSecret(t *testing.T) {
	s, _ := configure(t, map[string]string{"LIVECHAT_ORGANIZATION_ID": "org-1", "LIVECHAT_CLIENT_ID": "c", "LIVECHAT_REDIRECT_URI": "https://x.example/"})
	block := func(v livechat.ConfigSecret) json.RawMessage { raw, _ := json.Marshal(v); return raw }
	good := livechat.ConfigSecret{AgentToken: base64.StdEncoding.EncodeToString([]byte("acc:pat")), WebhookSecret: "whsec"}
	if err := s.CheckSecret(block(good), false); err != nil {
		t.Fatal(err)
	}
	bad := livechat.ConfigSecret{AgentToken: "not base64!", BotSecret: "bot-secret"}
	err := s.CheckSecret(block(bad), false)
	for _, want := range []string{"livechat.webhookSecret is required", "livechat.agentToken must be base64", "LIVECHAT_BOT_ID and the config secret's livechat.botSecret go together"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not mention %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "not base64!") || strings.Contains(err.Error(), "bot-secret") {
		t.Fatalf("an error quotes a value: %v", err)
	}
	// The webhooks function holds the webhook secret only.
	if err := s.CheckSecret(block(livechat.ConfigSecret{WebhookSecret: "whsec"}), true); err != nil {
		t.Fatalf("ingress block: %v", err)
	}
	if err := s.CheckSecret(json.RawMessage(`{"webhookSecret":5}`), true); err == nil || !strings.Contains(err.Error(), "livechat block") {
		t.Fatalf("a block of the wrong shape: %v", err)
	}
}
