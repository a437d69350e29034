package livechat

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
)

// Integration is LiveChat as the bridge composes it: turned on by
// LIVECHAT_ORGANIZATION_ID, with its "livechat" block of the config secret.
func Integration() integration.Integration {
	return integration.Integration{Name: hitl.LiveChat, EnabledBy: "LIVECHAT_ORGANIZATION_ID", Configure: configure}
}

// Settings are LiveChat's environment settings.
type Settings struct {
	OrganizationID string // LIVECHAT_ORGANIZATION_ID
	ClientID       string // LIVECHAT_CLIENT_ID
	// RedirectURI (LIVECHAT_REDIRECT_URI) is an allowed redirect URI of
	// the LiveChat app; the customer token grant requires it.
	RedirectURI string
	GroupID     int    // LIVECHAT_GROUP_ID
	APIURL      string // LIVECHAT_API_URL, for simulators
	AccountsURL string // LIVECHAT_ACCOUNTS_URL, for simulators
	// BotID (LIVECHAT_BOT_ID) is the LiveChat bot bot messages are sent
	// as; optional.
	BotID string
}

// ConfigSecret is the config secret's "livechat" block. Its values are
// credentials: never log them.
type ConfigSecret struct {
	AgentToken    string `json:"agentToken"` // base64 "account_id:PAT"
	WebhookSecret string `json:"webhookSecret"`
	// IntegrationAgentID is the agent (an email) whose PAT AgentToken holds.
	// Optional: the bridge asks LiveChat, and writes it into the ingress
	// secret for the webhooks function, which cannot ask.
	IntegrationAgentID string `json:"integrationAgentId,omitempty"`
	// BotSecret is the secret create_bot returned for LIVECHAT_BOT_ID.
	BotSecret string `json:"botSecret,omitempty"`
}

func configure(env integration.Env) (integration.Platform, error) {
	getenv := env.Getenv
	s := &Settings{
		OrganizationID: getenv("LIVECHAT_ORGANIZATION_ID"),
		ClientID:       getenv("LIVECHAT_CLIENT_ID"),
		RedirectURI:    getenv("LIVECHAT_REDIRECT_URI"),
		APIURL:         cmp.Or(getenv("LIVECHAT_API_URL"), "https://api.livechatinc.com/v3.6"),
		AccountsURL:    cmp.Or(getenv("LIVECHAT_ACCOUNTS_URL"), "https://accounts.livechat.com"),
		BotID:          getenv("LIVECHAT_BOT_ID"),
	}
	var errs []error
	group, err := strconv.Atoi(cmp.Or(getenv("LIVECHAT_GROUP_ID"), "0"))
	if err != nil || group < 0 {
		errs = append(errs, errors.New("LIVECHAT_GROUP_ID must be a LiveChat group number"))
	}
	s.GroupID = group
	if s.ClientID == "" {
		errs = append(errs, errors.New("LIVECHAT_CLIENT_ID is required with LIVECHAT_ORGANIZATION_ID"))
	}
	if s.RedirectURI == "" {
		errs = append(errs, errors.New("LIVECHAT_REDIRECT_URI is required with LIVECHAT_ORGANIZATION_ID: a redirect URI allowed in the LiveChat app"))
	}
	errs = append(errs, integration.CheckURL("LIVECHAT_API_URL", s.APIURL, env.AllowPrivateURLs),
		integration.CheckURL("LIVECHAT_ACCOUNTS_URL", s.AccountsURL, env.AllowPrivateURLs))
	return s, errors.Join(errs...)
}

// CheckSecret checks the livechat block against the settings.
func (s *Settings) CheckSecret(block json.RawMessage, ingress bool) error {
	sec, err := integration.DecodeBlock[ConfigSecret](hitl.LiveChat, block)
	if err != nil {
		return err
	}
	var errs []error
	if sec.WebhookSecret == "" {
		errs = append(errs, errors.New("config secret: livechat.webhookSecret is required"))
	}
	if raw, err := base64.StdEncoding.DecodeString(sec.AgentToken); !ingress && (err != nil || !strings.Contains(string(raw), ":")) {
		errs = append(errs, errors.New(`config secret: livechat.agentToken must be base64 of "account_id:PAT"`))
	}
	if !ingress && (s.BotID == "") != (sec.BotSecret == "") {
		errs = append(errs, errors.New("LIVECHAT_BOT_ID and the config secret's livechat.botSecret go together"))
	}
	return errors.Join(errs...)
}

// Wire builds LiveChat's parts: the client (not in the webhooks function,
// which holds no PAT), the webhook parser, the self-check and the webhook
// setup through the Configuration API.
func (s *Settings) Wire(block json.RawMessage, rt integration.Runtime) (integration.Parts, error) {
	sec, err := integration.DecodeBlock[ConfigSecret](hitl.LiveChat, block)
	if err != nil {
		return integration.Parts{}, err
	}
	// The integration's own agent is never reported as the assignee. The
	// webhooks function cannot ask LiveChat who it is (it has no PAT): the
	// ingress secret carries it (Parts.Ingress).
	integrationAgent := func(context.Context) (string, error) {
		if sec.IntegrationAgentID != "" {
			return sec.IntegrationAgentID, nil
		}
		return "", errors.New("livechat.integrationAgentId is not in the ingress secret yet")
	}
	var parts integration.Parts
	// Without the PAT (ingress) agents are known by name only from the
	// webhooks that introduce them.
	var agentLookup func(context.Context, string) (hitl.Agent, error)
	if !rt.Ingress {
		client, err := NewClient(Config{
			APIURL: s.APIURL, AccountsURL: s.AccountsURL, OrganizationID: s.OrganizationID,
			ClientID: s.ClientID, RedirectURI: s.RedirectURI, GroupID: s.GroupID,
			AgentToken: sec.AgentToken, BotID: s.BotID, BotSecret: sec.BotSecret,
			HTTPClient: rt.Client, Media: rt.Media, Now: rt.Now, Logger: rt.Log,
		})
		if err != nil {
			return parts, err
		}
		if sec.IntegrationAgentID == "" {
			integrationAgent = client.IntegrationAgentID
		}
		agentLookup = client.Agent
		parts.Provider = client
		parts.Inspect = func(ctx context.Context, webhookURL string) []health.Check {
			return client.Inspect(ctx, SetupConfig{URL: webhookURL, Secret: sec.WebhookSecret})
		}
		parts.Setup = func(ctx context.Context, webhookURL string) (any, []health.Check, error) {
			res, err := client.SetupWebhooks(ctx, SetupConfig{URL: webhookURL, Secret: sec.WebhookSecret, Lease: rt.Store.AcquireLease})
			return res, res.Checks, err
		}
		parts.Ingress = func(ctx context.Context, block json.RawMessage) (json.RawMessage, error) {
			full, err := integration.DecodeBlock[ConfigSecret](hitl.LiveChat, block)
			if err != nil {
				return nil, err
			}
			in := ConfigSecret{WebhookSecret: full.WebhookSecret, IntegrationAgentID: full.IntegrationAgentID}
			if in.IntegrationAgentID == "" {
				if in.IntegrationAgentID, err = client.IntegrationAgentID(ctx); err != nil {
					return nil, fmt.Errorf("learn the LiveChat integration agent: %w", err)
				}
			}
			return json.Marshal(in)
		}
	}
	webhooks := NewWebhooks(sec.WebhookSecret, s.OrganizationID).
		WithIntegrationAgent(integrationAgent).WithBot(s.BotID).WithAgentLookup(agentLookup).WithLogger(rt.Log)
	parts.Webhooks = integration.BodyParser(webhooks.Parse)
	return parts, nil
}
