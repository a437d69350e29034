package config

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func validEnv() map[string]string {
	return map[string]string{
		"BOT_CALLBACK_URL":         "https://bot.example.com/hitl",
		"LIVECHAT_ORGANIZATION_ID": "org-1",
		"LIVECHAT_CLIENT_ID":       "client-1",
		"LIVECHAT_GROUP_ID":        "2",
		"LIVECHAT_REDIRECT_URI":    "https://bot.example.com/",
	}
}

func validSecret() Secret {
	return Secret{
		BotAPIKeys:            []string{"bot-key-0123456789"},
		CallbackSigningSecret: "sign-0123456789abcdef",
		LiveChat: &LiveChatSecret{
			AgentToken:    base64.StdEncoding.EncodeToString([]byte("acc:pat")),
			WebhookSecret: "whsec",
		},
	}
}

func TestValidConfig(t *testing.T) {
	c, err := Env(env(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	c.Secret = validSecret()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Default() != "livechat" || c.LiveChat.GroupID != 2 || c.LiveChat.APIURL != "https://api.livechatinc.com/v3.6" {
		t.Fatalf("unexpected config %+v %+v", c, c.LiveChat)
	}
}

func TestInvalidConfigNamesEveryProblem(t *testing.T) {
	e := validEnv()
	e["LIVECHAT_GROUP_ID"] = "abc"
	e["LIVECHAT_CLIENT_ID"] = ""
	e["BOT_CALLBACK_URL"] = "http://bot.example.com"
	e["DEFAULT_PROVIDER"] = "zoho"
	c, envErr := Env(env(e))
	c.Secret = validSecret()
	c.Secret.BotAPIKeys = []string{"short"}
	c.Secret.LiveChat.AgentToken = "not base64!"
	err := c.Validate()
	all := envErr.Error() + "\n" + err.Error()
	for _, want := range []string{"LIVECHAT_GROUP_ID", "LIVECHAT_CLIENT_ID", "BOT_CALLBACK_URL must be an absolute https URL",
		`DEFAULT_PROVIDER "zoho"`, "botApiKeys[0]", "agentToken"} {
		if !strings.Contains(all, want) {
			t.Errorf("errors do not mention %q:\n%s", want, all)
		}
	}
}

func TestNoProvider(t *testing.T) {
	c, _ := Env(env(map[string]string{"BOT_CALLBACK_URL": "https://bot.example.com"}))
	c.Secret = validSecret()
	c.Secret.LiveChat = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no provider is configured") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseSecretAndRedaction(t *testing.T) {
	s, err := ParseSecret([]byte(`{"botApiKeys":["k1"],"callbackSigningSecret":"topsecret","livechat":{"agentToken":"t","webhookSecret":"w"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.CallbackSigningSecret != "topsecret" || s.LiveChat.WebhookSecret != "w" {
		t.Fatalf("parsed %#v", s.LiveChat)
	}
	b, _ := json.Marshal(s)
	if strings.Contains(string(b), "topsecret") || strings.Contains(s.String(), "topsecret") {
		t.Fatal("secret values leak through encoding")
	}
	if _, err := ParseSecret([]byte(`{"botApiKeys":"k1"}`)); err == nil || !strings.Contains(err.Error(), "botApiKeys") {
		t.Fatalf("wrong type: err = %v", err)
	}
}

func TestZohoSettings(t *testing.T) {
	e := map[string]string{
		"BOT_CALLBACK_URL": "https://bot.example.com/hitl", "DEFAULT_PROVIDER": "zoho",
		"ZOHO_SCREEN_NAME": "acme", "ZOHO_REGION": "ca", "ZOHO_APP_ID": "1", "ZOHO_DEPARTMENT_ID": "2", "ZOHO_ORG_ID": "3",
	}
	c, err := Env(env(e))
	if err != nil {
		t.Fatal(err)
	}
	c.Secret = Secret{BotAPIKeys: []string{"bot-key-0123456789"}, CallbackSigningSecret: "sign-0123456789abcdef",
		Zoho: &ZohoSecret{ClientID: "id", ClientSecret: "secret"}}
	if err := c.Validate(); err != nil || c.Default() != "zoho" || c.Zoho.Region != "ca" {
		t.Fatalf("valid Zoho config refused: %v", err)
	}

	e["ZOHO_REGION"] = "mars"
	e["ZOHO_ORG_ID"] = ""
	_, err = Env(env(e))
	if err == nil || !strings.Contains(err.Error(), `unknown Zoho region "mars"`) || !strings.Contains(err.Error(), "ZOHO_ORG_ID is required") {
		t.Fatalf("err = %v", err)
	}
	e["ZOHO_REGION"] = ""
	if _, err = Env(env(e)); err == nil || !strings.Contains(err.Error(), "ZOHO_REGION") {
		t.Fatalf("an empty region must not default silently: %v", err)
	}

	c.Secret.Zoho = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no zoho block") {
		t.Fatalf("missing secret block: %v", err)
	}
}

func TestBotpressWebhookURLComesFromTheSecretAndTheEnvVarIsDeprecated(t *testing.T) {
	const fromSecret, fromEnv = "https://webhook.botpress.example/secret-id", "https://webhook.botpress.example/env-id"
	e := validEnv()
	c, _ := Env(env(e))
	c.Secret = validSecret()
	c.Secret.BotpressPathToken = "bp-path-token-0123456789"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "botpressWebhookUrl is required") {
		t.Fatalf("a path token without a webhook URL: %v", err)
	}

	e["BOTPRESS_WEBHOOK_URL"] = fromEnv
	c, _ = Env(env(e))
	c.Secret = validSecret()
	c.Secret.BotpressPathToken = "bp-path-token-0123456789"
	if err := c.Validate(); err != nil || c.BotpressWebhookURL() != fromEnv {
		t.Fatalf("the deprecated env var: %q, %v", c.BotpressWebhookURL(), err)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "deprecated") || strings.Contains(w[0], fromEnv) {
		t.Fatalf("warnings %q", w)
	}

	c.Secret.BotpressWebhookURL = fromSecret
	if c.BotpressWebhookURL() != fromSecret || len(c.Warnings()) != 1 || strings.Contains(c.Warnings()[0], "env-id") {
		t.Fatalf("the secret's URL must win: %q %q", c.BotpressWebhookURL(), c.Warnings())
	}
	c.Secret.BotpressWebhookURL = "ftp://webhook.botpress.example/x"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "ftp://") {
		t.Fatalf("a bad URL must be refused without quoting it: %v", err)
	}
	var s Secret
	if err := json.Unmarshal([]byte(`{"botpressWebhookUrl":"`+fromSecret+`"}`), &s); err != nil || s.BotpressWebhookURL != fromSecret {
		t.Fatalf("secret field botpressWebhookUrl: %q %v", s.BotpressWebhookURL, err)
	}
}
