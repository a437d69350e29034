package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
)

// chat is a platform of the tests' own: turned on by CHAT_ACCOUNT, with a
// "chat" block that needs a token.
type chat struct{ account string }

func (chat) CheckSecret(block json.RawMessage, ingress bool) error {
	s, err := integration.DecodeBlock[struct {
		Token string `json:"token"`
	}]("chat", block)
	if err != nil {
		return err
	}
	if s.Token == "" && !ingress {
		return errors.New("config secret: chat.token is required")
	}
	return nil
}

func (chat) Wire(json.RawMessage, integration.Runtime) (integration.Parts, error) {
	return integration.Parts{}, nil
}

var chatIntegration = integration.Integration{Name: "chat", EnabledBy: "CHAT_ACCOUNT", Configure: func(env integration.Env) (integration.Platform, error) {
	if env.Getenv("CHAT_REGION") == "mars" {
		return chat{}, errors.New("CHAT_REGION is not a region")
	}
	return chat{account: env.Getenv("CHAT_ACCOUNT")}, nil
}}

// other is a second platform, never turned on in these tests.
var other = integration.Integration{Name: "other", EnabledBy: "OTHER_ID", Configure: func(integration.Env) (integration.Platform, error) {
	return chat{}, nil
}}

var integrations = []integration.Integration{chatIntegration, other}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func validEnv() map[string]string {
	return map[string]string{"BOT_CALLBACK_URL": "https://bot.example.com/hitl", "CHAT_ACCOUNT": "acme"}
}

func validSecret() Secret {
	return Secret{
		BotAPIKeys:            []string{"bot-key-0123456789"},
		CallbackSigningSecret: "sign-0123456789abcdef",
		Blocks:                map[string]json.RawMessage{"chat": json.RawMessage(`{"token":"chat-token"}`)},
	}
}

func TestValidConfig(t *testing.T) {
	c, err := Env(env(validEnv()), integrations)
	if err != nil {
		t.Fatal(err)
	}
	c.Secret = validSecret()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Default() != "chat" || strings.Join(c.Providers(), ",") != "chat" || c.Platforms["chat"].(chat).account != "acme" {
		t.Fatalf("unexpected config %+v", c)
	}
}

func TestInvalidConfigNamesEveryProblem(t *testing.T) {
	e := validEnv()
	e["CHAT_REGION"] = "mars"
	e["BOT_CALLBACK_URL"] = "http://bot.example.com"
	e["DEFAULT_PROVIDER"] = "zoho"
	c, envErr := Env(env(e), integrations)
	c.Secret = validSecret()
	c.Secret.BotAPIKeys = []string{"short"}
	c.Secret.Blocks["chat"] = json.RawMessage(`{"token":""}`)
	c.Secret.Blocks["other"] = json.RawMessage(`{}`)
	err := c.Validate()
	all := envErr.Error() + "\n" + err.Error()
	for _, want := range []string{"CHAT_REGION", "BOT_CALLBACK_URL must be an absolute https URL",
		`DEFAULT_PROVIDER "zoho"`, "botApiKeys[0]", "chat.token is required", "has a other block but OTHER_ID is not set"} {
		if !strings.Contains(all, want) {
			t.Errorf("errors do not mention %q:\n%s", want, all)
		}
	}
}

func TestIngressRequiresLess(t *testing.T) {
	c, _ := Env(env(validEnv()), integrations)
	c.Ingress = true
	c.Secret = validSecret().Ingress(map[string]json.RawMessage{"chat": json.RawMessage(`{}`)})
	if err := c.Validate(); err != nil {
		t.Fatalf("the webhooks function's view: %v", err)
	}
}

func TestNoProvider(t *testing.T) {
	c, _ := Env(env(map[string]string{"BOT_CALLBACK_URL": "https://bot.example.com"}), integrations)
	c.Secret = validSecret()
	c.Secret.Blocks = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no provider is configured: set CHAT_ACCOUNT or OTHER_ID") {
		t.Fatalf("err = %v", err)
	}
	c, _ = Env(env(validEnv()), integrations)
	c.Secret = validSecret()
	c.Secret.Blocks = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "CHAT_ACCOUNT is set but the config secret has no chat block") {
		t.Fatalf("missing block: %v", err)
	}
}

func TestParseSecretAndRedaction(t *testing.T) {
	s, err := ParseSecret([]byte(`{"botApiKeys":["k1"],"callbackSigningSecret":"topsecret","chat":{"token":"t"},"other":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.CallbackSigningSecret != "topsecret" || string(s.Blocks["chat"]) != `{"token":"t"}` || len(s.Blocks) != 1 {
		t.Fatalf("parsed %q", s.Blocks)
	}
	b, _ := json.Marshal(s)
	if strings.Contains(string(b), "topsecret") || strings.Contains(s.String(), "topsecret") {
		t.Fatal("secret values leak through encoding")
	}
	if _, err := ParseSecret([]byte(`{"botApiKeys":"k1"}`)); err == nil || !strings.Contains(err.Error(), "botApiKeys") {
		t.Fatalf("wrong type: err = %v", err)
	}
	c, _ := Env(env(validEnv()), integrations)
	c.Secret = validSecret()
	c.Secret.Blocks["chat"] = json.RawMessage(`{"token":5}`)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `in the chat block, field "token" must be string`) {
		t.Fatalf("a block of the wrong shape: %v", err)
	}
}

func TestIngressDocument(t *testing.T) {
	s := validSecret()
	s.AdminAPIKey = "admin-key-0123456789"
	doc, err := s.Ingress(map[string]json.RawMessage{"chat": json.RawMessage(` { "region" : "eu" } `)}).Document()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "bot-key") || strings.Contains(string(doc), "admin-key") || strings.Contains(string(doc), "chat-token") {
		t.Fatalf("the ingress document holds a credential: %s", doc)
	}
	back, err := ParseSecret(doc)
	if err != nil || back.CallbackSigningSecret != s.CallbackSigningSecret || string(back.Blocks["chat"]) != `{"region":"eu"}` {
		t.Fatalf("round trip: %s, %v", doc, err)
	}
	again, _ := back.Document()
	if string(again) != string(doc) {
		t.Fatalf("the document is not stable:\n%s\n%s", doc, again)
	}
}

func TestBotpressWebhookURLComesFromTheSecretAndTheEnvVarIsDeprecated(t *testing.T) {
	const fromSecret, fromEnv = "https://webhook.botpress.example/secret-id", "https://webhook.botpress.example/env-id"
	e := validEnv()
	c, _ := Env(env(e), integrations)
	c.Secret = validSecret()
	c.Secret.BotpressPathToken = "bp-path-token-0123456789"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "botpressWebhookUrl is required") {
		t.Fatalf("a path token without a webhook URL: %v", err)
	}

	e["BOTPRESS_WEBHOOK_URL"] = fromEnv
	c, _ = Env(env(e), integrations)
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
