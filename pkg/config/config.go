// Package config reads hitl-bridge's settings: non-secret ones from the
// environment, secret ones from the config secret document (Secrets Manager
// in AWS, HITL_SECRET_JSON locally). Everything is validated at start, and
// every problem is reported in one error. Platforms are known only through
// the list of integrations the caller passes: each reads its own settings
// and checks its own block of the config secret.
package config

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
)

// Secret is the config secret document. Its values are credentials: never
// log them.
type Secret struct {
	BotAPIKeys            []string `json:"botApiKeys"`
	CallbackSigningSecret string   `json:"callbackSigningSecret"`
	BotpressPathToken     string   `json:"botpressPathToken"`
	AdminAPIKey           string   `json:"adminApiKey"`
	// BotpressWebhookURL is the Botpress integration's webhook: whoever has
	// it can post into the bot's conversations as an agent.
	BotpressWebhookURL string `json:"botpressWebhookUrl"`
	// Blocks are the document's other members that are not null: each
	// platform's block under the platform's name ({"livechat": {…}}), which
	// the platform reads.
	Blocks map[string]json.RawMessage `json:"-"`
}

// Config is every setting of one process or function.
type Config struct {
	DefaultProvider string
	BotCallbackURL  string
	// EnvBotpressWebhookURL is BOTPRESS_WEBHOOK_URL, read for one more
	// release: the URL is a credential and belongs in the config secret
	// (botpressWebhookUrl), which wins when both are set.
	EnvBotpressWebhookURL string
	// BotpressIdleTimeout ends a Botpress session nobody wrote in for this
	// long (BOTPRESS_INACTIVITY_TIMEOUT, default 30m).
	BotpressIdleTimeout time.Duration
	AllowPrivateURLs    bool
	// PublicURL is the bridge's public base URL (PUBLIC_URL): webhooks are
	// registered to it. Empty in the actions function, which takes it from
	// the request.
	PublicURL string

	// Integrations are the platforms the bridge knows, in order; Platforms
	// are the configured ones (their EnabledBy variable is set), by name.
	Integrations []integration.Integration
	Platforms    map[string]integration.Platform

	// AWS deployment.
	TableName       string
	ConfigSecretARN string
	// IngressSecretARN is the ingress secret (the config secret's ingress
	// part as a document): the webhooks function reads it instead of the
	// config secret; the token refresh function keeps it derived from the
	// config secret.
	IngressSecretARN string

	// Ingress is set when Secret holds only the ingress part of the config
	// secret: the webhooks function's view, checked by Validate for what
	// verifying and forwarding webhooks needs.
	Ingress bool

	// Local process.
	Listen    string
	StorePath string

	Secret Secret
}

// Env reads the non-secret settings through getenv (os.Getenv in
// production), and those of each platform of integrations that is turned
// on. Problems are joined into one error.
func Env(getenv func(string) string, integrations []integration.Integration) (Config, error) {
	var errs []error
	c := Config{
		DefaultProvider:       getenv("DEFAULT_PROVIDER"),
		BotCallbackURL:        getenv("BOT_CALLBACK_URL"),
		EnvBotpressWebhookURL: getenv("BOTPRESS_WEBHOOK_URL"),
		TableName:             getenv("TABLE_NAME"),
		ConfigSecretARN:       getenv("CONFIG_SECRET_ARN"),
		IngressSecretARN:      getenv("INGRESS_SECRET_ARN"),
		Listen:                cmp.Or(getenv("HITL_LISTEN"), "127.0.0.1:8080"),
		StorePath:             cmp.Or(getenv("HITL_STORE_PATH"), ".hitl/bridge.db"),
		Integrations:          integrations,
		Platforms:             map[string]integration.Platform{},
	}
	c.BotpressIdleTimeout = hitl.DefaultIdleTimeout
	if v := getenv("BOTPRESS_INACTIVITY_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("BOTPRESS_INACTIVITY_TIMEOUT must be a positive duration such as 30m"))
		}
		c.BotpressIdleTimeout = d
	}
	if c.PublicURL = strings.TrimRight(getenv("PUBLIC_URL"), "/"); c.PublicURL != "" {
		errs = append(errs, integration.CheckURL("PUBLIC_URL", c.PublicURL, false))
	}
	if v := getenv("HITL_ALLOW_PRIVATE_URLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HITL_ALLOW_PRIVATE_URLS must be true or false"))
		}
		c.AllowPrivateURLs = b
	}
	for _, in := range integrations {
		if getenv(in.EnabledBy) == "" {
			continue
		}
		p, err := in.Configure(integration.Env{Getenv: getenv, AllowPrivateURLs: c.AllowPrivateURLs})
		errs = append(errs, err)
		c.Platforms[in.Name] = p
	}
	return c, errors.Join(errs...)
}

// ParseSecret decodes the config secret document: the bridge's own
// members, and each other member that is not null as a platform's block.
func ParseSecret(b []byte) (Secret, error) {
	var s Secret
	var members map[string]json.RawMessage
	for _, v := range []any{&s, &members} {
		if err := hitl.DecodeJSON(b, v); err != nil {
			return Secret{}, fmt.Errorf("config secret is not valid: %s", hitl.ErrorMessage(err))
		}
	}
	for _, own := range []string{"botApiKeys", "callbackSigningSecret", "botpressPathToken", "adminApiKey", "botpressWebhookUrl"} {
		delete(members, own)
	}
	for name, raw := range members {
		if string(raw) != "null" {
			if s.Blocks == nil {
				s.Blocks = map[string]json.RawMessage{}
			}
			s.Blocks[name] = raw
		}
	}
	return s, nil
}

// Validate checks that the settings and the secret fit together: each
// configured platform has its block and the block is what it needs, no
// block is left without its platform, URLs are absolute, keys are strong
// enough.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	providers := c.Providers()
	if len(providers) == 0 {
		var enablers []string
		for _, in := range c.Integrations {
			enablers = append(enablers, in.EnabledBy)
		}
		add("no provider is configured: set %s, and the provider's block of the config secret", strings.Join(enablers, " or "))
	}
	if len(providers) > 0 && !slices.Contains(providers, c.Default()) {
		add("DEFAULT_PROVIDER %q is not a configured provider (configured: %s)", c.DefaultProvider, strings.Join(providers, ", "))
	}
	for _, in := range c.Integrations {
		p, configured := c.Platforms[in.Name]
		block, present := c.Secret.Blocks[in.Name]
		switch {
		case configured && !present:
			add("%s is set but the config secret has no %s block", in.EnabledBy, in.Name)
		case configured:
			errs = append(errs, p.CheckSecret(block, c.Ingress))
		case present:
			add("the config secret has a %s block but %s is not set", in.Name, in.EnabledBy)
		}
	}
	if len(c.Secret.BotAPIKeys) == 0 && !c.Ingress {
		add("config secret: botApiKeys needs at least one key")
	}
	for i, k := range c.Secret.BotAPIKeys {
		if len(k) < 16 {
			add("config secret: botApiKeys[%d] is shorter than 16 characters", i)
		}
	}
	if len(c.Secret.CallbackSigningSecret) < 16 {
		add("config secret: callbackSigningSecret must be at least 16 characters")
	}
	if c.Secret.AdminAPIKey != "" && len(c.Secret.AdminAPIKey) < 16 {
		add("config secret: adminApiKey must be at least 16 characters")
	}
	if token := c.Secret.BotpressPathToken; token != "" {
		if len(token) < 16 || strings.ContainsAny(token, "/?#% ") {
			add("config secret: botpressPathToken must be at least 16 characters, none of them / ? # %% or space")
		}
		if c.BotpressWebhookURL() == "" {
			add("config secret: botpressWebhookUrl is required with botpressPathToken: agent messages are sent there")
		}
	}
	if u := c.BotpressWebhookURL(); u != "" {
		errs = append(errs, integration.CheckURL("botpressWebhookUrl", u, c.AllowPrivateURLs))
	}
	if c.BotCallbackURL == "" {
		add("BOT_CALLBACK_URL is required: the bot receives agent events there")
	} else {
		errs = append(errs, integration.CheckURL("BOT_CALLBACK_URL", c.BotCallbackURL, c.AllowPrivateURLs))
	}
	return errors.Join(errs...)
}

// Ingress is the part of the secret the webhooks function needs to
// forward webhooks' events: the callback signing secret and the Botpress
// webhook URL, with blocks, the platforms' ingress parts
// (integration.Parts.Ingress). Nothing that lets one call the bot API or
// the operator routes.
func (s Secret) Ingress(blocks map[string]json.RawMessage) Secret {
	return Secret{CallbackSigningSecret: s.CallbackSigningSecret, BotpressWebhookURL: s.BotpressWebhookURL, Blocks: blocks}
}

// Document is the secret as the JSON document it is read from (which
// MarshalJSON never gives), members in name order: for writing a secret
// (the ingress secret).
func (s Secret) Document() ([]byte, error) {
	type document Secret
	own, err := json.Marshal(document(s))
	if err != nil {
		return nil, err
	}
	members := map[string]json.RawMessage{}
	if err := json.Unmarshal(own, &members); err != nil {
		return nil, err
	}
	maps.Copy(members, s.Blocks)
	return json.Marshal(members)
}

// BotpressWebhookURL is the Botpress integration's webhook: the config
// secret's botpressWebhookUrl, else the deprecated BOTPRESS_WEBHOOK_URL.
func (c Config) BotpressWebhookURL() string {
	return cmp.Or(c.Secret.BotpressWebhookURL, c.EnvBotpressWebhookURL)
}

// Warnings lists settings that work but should change. They name
// settings, never their values.
func (c Config) Warnings() []string {
	switch {
	case c.EnvBotpressWebhookURL == "":
		return nil
	case c.Secret.BotpressWebhookURL == "":
		return []string{"BOTPRESS_WEBHOOK_URL (the BotpressWebhookUrl parameter) is deprecated and will be ignored from the next release: the URL is a credential; move it to the config secret's botpressWebhookUrl and clear the parameter"}
	default:
		return []string{"BOTPRESS_WEBHOOK_URL is ignored: the config secret's botpressWebhookUrl is set; clear the BotpressWebhookUrl parameter"}
	}
}

// Providers lists the configured providers, in the integrations' order.
func (c Config) Providers() []string {
	var p []string
	for _, in := range c.Integrations {
		if _, ok := c.Platforms[in.Name]; ok {
			p = append(p, in.Name)
		}
	}
	return p
}

// Default returns the default provider name.
func (c Config) Default() string {
	if p := c.Providers(); c.DefaultProvider == "" && len(p) == 1 {
		return p[0]
	}
	return c.DefaultProvider
}

// MarshalJSON never reveals secret values, in case a Secret is logged or
// encoded by mistake.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal("[redacted]") }

// String never reveals secret values.
func (s Secret) String() string { return "[redacted]" }
