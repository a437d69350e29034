// Package config reads hitl-bridge's settings: non-secret ones from the
// environment, secret ones from the config secret document (Secrets Manager
// in AWS, HITL_SECRET_JSON locally). Everything is validated at start, and
// every problem is reported in one error.
package config

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
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
	BotpressWebhookURL string          `json:"botpressWebhookUrl"`
	LiveChat           *LiveChatSecret `json:"livechat"`
	Zoho               *ZohoSecret     `json:"zoho"`
}

// LiveChatSecret holds LiveChat credentials.
type LiveChatSecret struct {
	AgentToken    string `json:"agentToken"` // base64 "account_id:PAT"
	WebhookSecret string `json:"webhookSecret"`
	// IntegrationAgentID is the agent (an email) whose PAT AgentToken holds.
	// Optional: the bridge asks LiveChat, and writes it into the ingress
	// secret for the webhooks function, which cannot ask.
	IntegrationAgentID string `json:"integrationAgentId,omitempty"`
	// BotSecret is the secret create_bot returned for LIVECHAT_BOT_ID.
	BotSecret string `json:"botSecret,omitempty"`
}

// ZohoSecret holds Zoho SalesIQ credentials.
type ZohoSecret struct {
	ClientID          string   `json:"clientId"`
	ClientSecret      string   `json:"clientSecret"`
	RefreshToken      string   `json:"refreshToken"`
	WebhookPublicKeys []string `json:"webhookPublicKeys"`
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

	LiveChat *LiveChat // nil when LiveChat is not used
	Zoho     *Zoho     // nil when Zoho SalesIQ is not used

	// AWS deployment.
	TableName       string
	ConfigSecretARN string
	// IngressSecretARN is the ingress secret (Secret.Ingress as a
	// document): the webhooks function reads it instead of the config
	// secret; the token refresh function keeps it derived from the config
	// secret.
	IngressSecretARN string

	// Ingress is set when Secret holds only the ingress part of the config
	// secret (Secret.Ingress): the webhooks function's view, checked by
	// Validate for what verifying and forwarding webhooks needs.
	Ingress bool

	// Local process.
	Listen    string
	StorePath string

	Secret Secret
}

// LiveChat is the LiveChat setting set.
type LiveChat struct {
	OrganizationID string
	ClientID       string
	RedirectURI    string // an allowed redirect URI of the LiveChat app; the customer token grant requires it
	GroupID        int
	APIURL         string
	AccountsURL    string
	// BotID is the LiveChat bot bot messages are sent as (optional).
	BotID string
}

// Zoho is the Zoho SalesIQ setting set.
type Zoho struct {
	Region       string // us, eu, in, au, cn, jp, ca, sa, uk
	ScreenName   string
	AppID        string
	DepartmentID string
	OrgID        string
	// AccountsURL and SalesIQURL override the region's hosts (simulators).
	AccountsURL    string
	SalesIQURL     string
	TokenSecretARN string // where the current token lives in AWS
	// OAuthStateSecretARN is where the key that signs OAuth states lives
	// in AWS; set for the function that serves the connect flow only.
	OAuthStateSecretARN string
}

// Env reads the non-secret settings through getenv (os.Getenv in
// production). Problems are joined into one error.
func Env(getenv func(string) string) (Config, error) {
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
		errs = append(errs, checkURL("PUBLIC_URL", c.PublicURL, false))
	}
	if v := getenv("HITL_ALLOW_PRIVATE_URLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HITL_ALLOW_PRIVATE_URLS must be true or false"))
		}
		c.AllowPrivateURLs = b
	}
	if org := getenv("LIVECHAT_ORGANIZATION_ID"); org != "" {
		lc := &LiveChat{
			OrganizationID: org,
			ClientID:       getenv("LIVECHAT_CLIENT_ID"),
			RedirectURI:    getenv("LIVECHAT_REDIRECT_URI"),
			APIURL:         cmp.Or(getenv("LIVECHAT_API_URL"), "https://api.livechatinc.com/v3.6"),
			AccountsURL:    cmp.Or(getenv("LIVECHAT_ACCOUNTS_URL"), "https://accounts.livechat.com"),
			BotID:          getenv("LIVECHAT_BOT_ID"),
		}
		group, err := strconv.Atoi(cmp.Or(getenv("LIVECHAT_GROUP_ID"), "0"))
		if err != nil || group < 0 {
			errs = append(errs, fmt.Errorf("LIVECHAT_GROUP_ID must be a LiveChat group number"))
		}
		lc.GroupID = group
		if lc.ClientID == "" {
			errs = append(errs, fmt.Errorf("LIVECHAT_CLIENT_ID is required with LIVECHAT_ORGANIZATION_ID"))
		}
		if lc.RedirectURI == "" {
			errs = append(errs, fmt.Errorf("LIVECHAT_REDIRECT_URI is required with LIVECHAT_ORGANIZATION_ID: a redirect URI allowed in the LiveChat app"))
		}
		errs = append(errs, checkURL("LIVECHAT_API_URL", lc.APIURL, c.AllowPrivateURLs), checkURL("LIVECHAT_ACCOUNTS_URL", lc.AccountsURL, c.AllowPrivateURLs))
		c.LiveChat = lc
	}
	if screen := getenv("ZOHO_SCREEN_NAME"); screen != "" {
		z := &Zoho{
			Region: getenv("ZOHO_REGION"), ScreenName: screen, AppID: getenv("ZOHO_APP_ID"),
			DepartmentID: getenv("ZOHO_DEPARTMENT_ID"), OrgID: getenv("ZOHO_ORG_ID"),
			AccountsURL: getenv("ZOHO_ACCOUNTS_URL"), SalesIQURL: getenv("ZOHO_SALESIQ_URL"),
			TokenSecretARN: getenv("ZOHO_TOKEN_SECRET_ARN"), OAuthStateSecretARN: getenv("ZOHO_OAUTH_STATE_SECRET_ARN"),
		}
		if _, err := zoho.LookupRegion(z.Region); err != nil {
			errs = append(errs, fmt.Errorf("ZOHO_REGION: %w", err))
		}
		for _, f := range []struct{ name, value string }{{"ZOHO_APP_ID", z.AppID}, {"ZOHO_DEPARTMENT_ID", z.DepartmentID}, {"ZOHO_ORG_ID", z.OrgID}} {
			if f.value == "" {
				errs = append(errs, fmt.Errorf("%s is required with ZOHO_SCREEN_NAME", f.name))
			}
		}
		for _, f := range []struct{ name, value string }{{"ZOHO_ACCOUNTS_URL", z.AccountsURL}, {"ZOHO_SALESIQ_URL", z.SalesIQURL}} {
			if f.value != "" {
				errs = append(errs, checkURL(f.name, f.value, c.AllowPrivateURLs))
			}
		}
		c.Zoho = z
	}
	return c, errors.Join(errs...)
}

// ParseSecret decodes the config secret document.
func ParseSecret(b []byte) (Secret, error) {
	var s Secret
	if err := hitl.DecodeJSON(b, &s); err != nil {
		return Secret{}, fmt.Errorf("config secret is not valid: %s", hitl.ErrorMessage(err))
	}
	return s, nil
}

// Validate checks that the settings and the secret fit together: each
// provider has all it needs, URLs are absolute, keys are strong enough.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	providers := c.Providers()
	if len(providers) == 0 {
		add("no provider is configured: set LIVECHAT_ORGANIZATION_ID or ZOHO_SCREEN_NAME, and the provider's block of the config secret")
	}
	if len(providers) > 0 && !slices.Contains(providers, c.Default()) {
		add("DEFAULT_PROVIDER %q is not a configured provider (configured: %s)", c.DefaultProvider, strings.Join(providers, ", "))
	}
	if c.LiveChat != nil {
		switch lc := c.Secret.LiveChat; {
		case lc == nil:
			add("LIVECHAT_ORGANIZATION_ID is set but the config secret has no livechat block")
		default:
			if lc.WebhookSecret == "" {
				add("config secret: livechat.webhookSecret is required")
			}
			if raw, err := base64.StdEncoding.DecodeString(lc.AgentToken); !c.Ingress && (err != nil || !strings.Contains(string(raw), ":")) {
				add(`config secret: livechat.agentToken must be base64 of "account_id:PAT"`)
			}
			if !c.Ingress && (c.LiveChat.BotID == "") != (lc.BotSecret == "") {
				add("LIVECHAT_BOT_ID and the config secret's livechat.botSecret go together")
			}
		}
	} else if c.Secret.LiveChat != nil {
		add("the config secret has a livechat block but LIVECHAT_ORGANIZATION_ID is not set")
	}
	if c.Zoho != nil {
		switch z := c.Secret.Zoho; {
		case z == nil:
			add("ZOHO_SCREEN_NAME is set but the config secret has no zoho block")
		default:
			if !c.Ingress && (z.ClientID == "" || z.ClientSecret == "") {
				add("config secret: zoho.clientId and zoho.clientSecret are required")
			}
			if len(z.WebhookPublicKeys) > 2 {
				add("config secret: zoho.webhookPublicKeys takes at most two keys")
			}
		}
	} else if c.Secret.Zoho != nil {
		add("the config secret has a zoho block but ZOHO_SCREEN_NAME is not set")
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
		if err := checkURL("botpressWebhookUrl", u, c.AllowPrivateURLs); err != nil {
			errs = append(errs, err)
		}
	}
	if c.BotCallbackURL == "" {
		add("BOT_CALLBACK_URL is required: the bot receives agent events there")
	} else if err := checkURL("BOT_CALLBACK_URL", c.BotCallbackURL, c.AllowPrivateURLs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Ingress is the part of the secret the webhooks function needs to verify
// webhooks and forward their events: the callback signing secret, the
// Botpress webhook URL, LiveChat's webhook secret and Zoho's webhook public
// keys. Nothing that lets one call a provider, the bot API or the operator
// routes.
func (s Secret) Ingress() Secret {
	in := Secret{CallbackSigningSecret: s.CallbackSigningSecret, BotpressWebhookURL: s.BotpressWebhookURL}
	if s.LiveChat != nil {
		in.LiveChat = &LiveChatSecret{WebhookSecret: s.LiveChat.WebhookSecret, IntegrationAgentID: s.LiveChat.IntegrationAgentID}
	}
	if s.Zoho != nil {
		in.Zoho = &ZohoSecret{WebhookPublicKeys: s.Zoho.WebhookPublicKeys}
	}
	return in
}

// Document is the secret as the JSON document it is read from (which
// MarshalJSON never gives): for writing the ingress secret only.
func (s Secret) Document() ([]byte, error) {
	type document Secret
	return json.Marshal(document(s))
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

// Providers lists the configured providers.
func (c Config) Providers() []string {
	var p []string
	if c.LiveChat != nil {
		p = append(p, hitl.LiveChat)
	}
	if c.Zoho != nil {
		p = append(p, hitl.Zoho)
	}
	return p
}

// Default returns the default provider name.
func (c Config) Default() string {
	if c.DefaultProvider == "" && len(c.Providers()) == 1 {
		return c.Providers()[0]
	}
	return c.DefaultProvider
}

// checkURL requires an absolute https URL; plain http is accepted for
// loopback hosts, and anywhere when allowHTTP (HITL_ALLOW_PRIVATE_URLS, for
// simulators and local bots).
func checkURL(name, raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && (allowHTTP || loopback(u.Hostname())))) {
		return fmt.Errorf("%s must be an absolute https URL (http only for localhost)", name)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// MarshalJSON never reveals secret values, in case a Secret is logged or
// encoded by mistake.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal("[redacted]") }

// String never reveals secret values.
func (s Secret) String() string { return "[redacted]" }
