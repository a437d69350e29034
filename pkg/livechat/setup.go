package livechat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// The bridge registers its own license webhooks through the Configuration
// API (https://platform.text.com/docs/management/configuration-api#webhooks):
// one per action Parse handles, owned by the app's client id, with the PAT
// it already has. Its registrations are recognised by their description,
// which starts with webhookMarker and carries a tag of the secret they were
// registered with (list_webhooks does not return secret_key), so a new
// webhook secret gets new registrations. LiveChat sends license webhooks
// only while the app is installed on the license (Private installation in
// the Developer Console); get_license_webhooks_state says whether they are.

// webhookMarker starts the description of every webhook the bridge registers.
const webhookMarker = "hitl-bridge"

// propagation is how long the Configuration API may take to apply a change
// (https://platform.text.com/docs/management/configuration-api#propagation-delay).
const propagation = 2 * time.Minute

// webhookFilters are the registration filters of the handled actions:
// incoming_event only for agents' events, so customers' messages (the
// bridge's own) never come back.
var webhookFilters = map[string]map[string]any{
	"incoming_event": {"author_type": "agent"},
}

// WebhookActions lists the actions the bridge registers webhooks for: the
// ones Parse handles.
func WebhookActions() []string { return slices.Sorted(maps.Keys(actions)) }

// Webhook is a registration as list_webhooks returns it.
type Webhook struct {
	ID            string          `json:"id"`
	URL           string          `json:"url"`
	Action        string          `json:"action"`
	Description   string          `json:"description"`
	Type          string          `json:"type"`
	OwnerClientID string          `json:"owner_client_id"`
	Filters       json.RawMessage `json:"filters,omitempty"`
}

// Lease spaces changing setup runs across containers (hitl.Store.AcquireLease).
type Lease func(ctx context.Context, name, owner string, now, until time.Time) (bool, error)

// SetupConfig is what webhook setup needs.
type SetupConfig struct {
	// URL is where LiveChat must send webhooks: the bridge's public URL
	// followed by /webhooks/livechat.
	URL string
	// Secret is the secret_key registrations carry (livechat.webhookSecret).
	Secret string
	// Lease, when set, lets one changing run happen per propagation delay.
	Lease Lease
}

// SetupResult says what a setup run did and found.
type SetupResult struct {
	// Registered are the actions registered by this run.
	Registered []string `json:"registered"`
	// Unregistered are the stale registrations removed, as "action id".
	Unregistered []string `json:"unregistered"`
	// Enabled reports whether LiveChat sends the app's license webhooks,
	// which it does once the app is installed.
	Enabled bool `json:"enabled"`
	// Checks are the problems found, each with its fix; empty when all is
	// well.
	Checks []health.Check `json:"checks"`
}

// plan is what setup must do.
type plan struct {
	keep    map[string]Webhook // by action
	missing []string           // actions without a registration
	stale   []Webhook          // ours, to remove
}

// wanted returns the description that marks the bridge's registrations made
// with secret: the marker and a short hash of the secret, which identifies
// it without revealing it.
func wanted(secret string) string {
	sum := sha256.Sum256([]byte("hitl-bridge livechat webhook secret\x00" + secret))
	return webhookMarker + " " + hex.EncodeToString(sum[:4])
}

// makePlan compares the app's registrations with what the bridge needs.
// The bridge's own are those whose description starts with the marker or
// whose URL is the bridge's; other registrations of the app are left alone.
func makePlan(list []Webhook, cfg SetupConfig) plan {
	p := plan{keep: map[string]Webhook{}}
	desc := wanted(cfg.Secret)
	var ours []Webhook
	for _, w := range list {
		if strings.HasPrefix(w.Description, webhookMarker) || w.URL == cfg.URL {
			ours = append(ours, w)
		}
	}
	for _, w := range ours {
		_, handled := actions[w.Action]
		_, kept := p.keep[w.Action]
		if handled && !kept && w.URL == cfg.URL && w.Description == desc && w.Type == "license" && sameFilters(w.Filters, webhookFilters[w.Action]) {
			p.keep[w.Action] = w
		}
	}
	for _, a := range WebhookActions() {
		if _, ok := p.keep[a]; !ok {
			p.missing = append(p.missing, a)
		}
	}
	for _, w := range ours {
		if p.keep[w.Action].ID != w.ID {
			p.stale = append(p.stale, w)
		}
	}
	return p
}

// sameFilters compares registered filters with wanted ones; an absent or
// empty object equals no filters.
func sameFilters(got json.RawMessage, want map[string]any) bool {
	var g map[string]any
	if t := bytes.TrimSpace(got); len(t) > 0 && string(t) != "null" {
		if json.Unmarshal(t, &g) != nil {
			return false
		}
	}
	if len(g) == 0 && len(want) == 0 {
		return true
	}
	w := map[string]any{}
	b, _ := json.Marshal(want)
	_ = json.Unmarshal(b, &w)
	return reflect.DeepEqual(g, w)
}

// SetupWebhooks makes the app's registrations match what the bridge
// handles: it registers what is missing, then removes the bridge's stale
// registrations (another URL or secret, an action no longer handled, a
// duplicate), and makes sure license webhooks are enabled. It never
// registers an action twice: a registration whose answer was lost is found
// by the next run's list. A run that fails halfway is finished by the next
// one. Problems that need the operator are returned as checks; err is set
// when the run could not complete.
func (c *Client) SetupWebhooks(ctx context.Context, cfg SetupConfig) (SetupResult, error) {
	res := SetupResult{Registered: []string{}, Unregistered: []string{}, Checks: []health.Check{}}
	if err := checkSetupConfig(cfg); err != nil {
		return res, err
	}
	list, err := c.listWebhooks(ctx)
	if err != nil {
		res.Checks = append(res.Checks, c.credentialsCheck(err))
		return res, fmt.Errorf("list livechat webhooks: %w", err)
	}
	p := makePlan(list, cfg)
	if len(p.missing) > 0 || len(p.stale) > 0 {
		if ok, err := c.takeSetupLease(ctx, cfg.Lease); err != nil {
			return res, err
		} else if !ok {
			res.Checks = append(res.Checks, health.Warning("webhooks",
				"another setup run changed the LiveChat webhooks less than 2 minutes ago; LiveChat takes up to 2 minutes to apply changes",
				"nothing to do: the next scheduled run (every 5 minutes) finishes the setup"))
			p.missing, p.stale = nil, nil
		}
	}
	var errs []error
	failed := map[string]bool{}
	for _, action := range p.missing {
		if err := c.registerWebhook(ctx, action, cfg); err != nil {
			failed[action] = true
			errs = append(errs, fmt.Errorf("register livechat webhook %s: %w", action, err))
			continue
		}
		res.Registered = append(res.Registered, action)
	}
	for _, w := range p.stale {
		if failed[w.Action] {
			continue // keep the old one until its replacement exists
		}
		if err := c.configCall(ctx, "unregister_webhook", false, map[string]any{"id": w.ID, "owner_client_id": c.clientID}, nil); err != nil {
			errs = append(errs, fmt.Errorf("unregister livechat webhook %s: %w", w.ID, err))
			continue
		}
		res.Unregistered = append(res.Unregistered, w.Action+" "+w.ID)
	}
	if len(errs) > 0 {
		res.Checks = append(res.Checks, c.credentialsCheck(errs[0]))
	}
	enabled, check := c.ensureEnabled(ctx)
	res.Enabled = enabled
	if check != nil {
		res.Checks = append(res.Checks, *check)
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "livechat webhook setup",
		slog.Any("registered", res.Registered), slog.Any("unregistered", res.Unregistered),
		slog.Bool("enabled", res.Enabled), slog.Int("problems", len(res.Checks)))
	return res, errors.Join(errs...)
}

func checkSetupConfig(cfg SetupConfig) error {
	if cfg.URL == "" {
		return errors.New("livechat webhook setup: the bridge's public URL is not set (PUBLIC_URL)")
	}
	if cfg.Secret == "" {
		return errors.New("livechat webhook setup: livechat.webhookSecret is empty")
	}
	return nil
}

func (c *Client) takeSetupLease(ctx context.Context, lease Lease) (bool, error) {
	if lease == nil {
		return true, nil
	}
	owner := make([]byte, 8)
	rand.Read(owner)
	now := c.now()
	ok, err := lease(ctx, "livechat-webhook-setup", "setup-"+hex.EncodeToString(owner), now, now.Add(propagation))
	if err != nil {
		return false, fmt.Errorf("take livechat webhook setup lease: %w", err)
	}
	return ok, nil
}

// ensureEnabled reads whether license webhooks are enabled; if not, it
// enables them (undoing a disable_license_webhooks) and reads again. Still
// disabled means the app is not installed.
func (c *Client) ensureEnabled(ctx context.Context) (bool, *health.Check) {
	enabled, err := c.webhooksEnabled(ctx)
	if err == nil && !enabled {
		if err = c.configCall(ctx, "enable_license_webhooks", false, map[string]any{"owner_client_id": c.clientID}, nil); err == nil {
			enabled, err = c.webhooksEnabled(ctx)
		}
	}
	if err != nil {
		ch := c.credentialsCheck(err)
		ch.Name = "installed"
		return false, &ch
	}
	if !enabled {
		ch := c.notInstalled()
		return false, &ch
	}
	return true, nil
}

func (c *Client) notInstalled() health.Check {
	return health.Failed("installed",
		fmt.Sprintf("the LiveChat app %s is not installed on your license, so LiveChat sends none of its webhooks", c.clientID),
		"in the LiveChat Developer Console open the app (Apps → your app), go to Private installation and click Install app; the next scheduled run (or POST /v1/admin/setup) then finds the webhooks enabled")
}

func (c *Client) webhooksEnabled(ctx context.Context) (bool, error) {
	var state struct {
		Enabled bool `json:"license_webhooks_enabled"`
	}
	err := c.configCall(ctx, "get_license_webhooks_state", false, map[string]any{"owner_client_id": c.clientID}, &state)
	return state.Enabled, err
}

func (c *Client) listWebhooks(ctx context.Context) ([]Webhook, error) {
	var list []Webhook
	err := c.configCall(ctx, "list_webhooks", false, map[string]any{"owner_client_id": c.clientID}, &list)
	return list, err
}

func (c *Client) registerWebhook(ctx context.Context, action string, cfg SetupConfig) error {
	in := map[string]any{
		"action":          action,
		"secret_key":      cfg.Secret,
		"url":             cfg.URL,
		"description":     wanted(cfg.Secret),
		"owner_client_id": c.clientID,
		"type":            "license",
	}
	if f := webhookFilters[action]; f != nil {
		in["filters"] = f
	}
	var out struct {
		ID string `json:"id"`
	}
	// A lost answer must not be repeated: the next run's list finds a
	// registration that was made.
	if err := c.configCall(ctx, "register_webhook", true, in, &out); err != nil {
		return err
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "livechat webhook registered", slog.String("action", action), slog.String("webhook_id", out.ID))
	return nil
}

// Inspect checks, without changing anything, what the bridge needs from
// LiveChat: the agent token and its scopes, the app and group, the
// webhooks and whether LiveChat sends them.
func (c *Client) Inspect(ctx context.Context, cfg SetupConfig) []health.Check {
	var checks []health.Check
	list, err := c.listWebhooks(ctx)
	if err != nil {
		return append(checks, c.credentialsCheck(err))
	}
	checks = append(checks, health.Passed("credentials", "LiveChat accepts livechat.agentToken and the app's client id"))
	var chats struct{}
	if err := c.agentCall(ctx, "list_chats", false, map[string]any{"limit": 1}, &chats); err != nil {
		ch := c.credentialsCheck(err)
		ch.Name = "chats"
		checks = append(checks, ch)
	} else {
		checks = append(checks, health.Passed("chats", "the agent token can read chats"))
	}
	checks = append(checks, c.groupCheck(ctx))
	if err := checkSetupConfig(cfg); err != nil {
		checks = append(checks, health.Failed("webhooks", err.Error(), "set PUBLIC_URL (locally) or deploy with the template, which sets it"))
	} else {
		p := makePlan(list, cfg)
		switch {
		case len(p.missing) > 0:
			checks = append(checks, health.Failed("webhooks",
				"no webhook registered for "+strings.Join(p.missing, ", ")+" to "+cfg.URL+" with the current webhook secret",
				"POST /v1/admin/setup (or the Setup button of /admin), or wait for the next scheduled run (every 5 minutes)"))
		case len(p.stale) > 0:
			checks = append(checks, health.Warning("webhooks",
				fmt.Sprintf("%d stale registration(s) of the bridge (another URL or secret, or an action no longer handled)", len(p.stale)),
				"POST /v1/admin/setup, or wait for the next scheduled run, which removes them"))
		default:
			checks = append(checks, health.Passed("webhooks", "registered: "+strings.Join(WebhookActions(), ", ")))
		}
	}
	enabled, err := c.webhooksEnabled(ctx)
	switch {
	case err != nil:
		ch := c.credentialsCheck(err)
		ch.Name = "installed"
		checks = append(checks, ch)
	case !enabled:
		checks = append(checks, c.notInstalled())
	default:
		checks = append(checks, health.Passed("installed", "the app is installed: LiveChat sends its webhooks"))
	}
	return checks
}

func (c *Client) groupCheck(ctx context.Context) health.Check {
	var g struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	err := c.configCall(ctx, "get_group", false, map[string]any{"id": c.groupID}, &g)
	var api *APIError
	switch {
	case err == nil:
		return health.Passed("group", fmt.Sprintf("group %d (%s) exists", c.groupID, g.Name))
	case errors.As(err, &api) && (api.Type == "not_found" || api.Type == "group_not_found"):
		return health.Failed("group", fmt.Sprintf("LiveChat has no group %d", c.groupID),
			"set LIVECHAT_GROUP_ID (LiveChatGroupId) to the number in the group's URL (Team → Groups)")
	case errors.As(err, &api) && api.Type == "authorization":
		return health.Warning("group", fmt.Sprintf("the group %d could not be checked: the personal access token lacks the groups--all:ro scope", c.groupID),
			"optional: create the token again with groups--all:ro to have the group checked")
	}
	return c.credentialsCheck(err)
}

// configScopes names the scope each Configuration API action needs.
var configScopes = map[string]string{
	"list_webhooks":              "webhooks.configuration:rw",
	"register_webhook":           "webhooks.configuration:rw",
	"unregister_webhook":         "webhooks.configuration:rw",
	"get_license_webhooks_state": "webhooks.state:ro",
	"enable_license_webhooks":    "webhooks.state:rw",
	"get_group":                  "groups--all:ro",
	"list_chats":                 "chats--all:rw",
}

// credentialsCheck explains a failed call: which credential, setting or
// scope is wrong, never its value.
func (c *Client) credentialsCheck(err error) health.Check {
	var api *APIError
	if !errors.As(err, &api) {
		return health.Failed("credentials", "LiveChat could not be reached: "+outbound.Brief(err),
			"check the network path to LiveChat (LIVECHAT_API_URL) and try again")
	}
	switch {
	case api.unauthenticated():
		return health.Failed("credentials", "LiveChat refused livechat.agentToken (authentication)",
			`create a personal access token (Developer Console → Settings → Authorization → Personal Access Tokens) and put base64("<account id>:<token>") in the config secret's livechat.agentToken`)
	case api.Status == http.StatusForbidden || api.Type == "authorization":
		scope := configScopes[api.Op]
		return health.Failed("credentials", fmt.Sprintf("the personal access token lacks the %s scope (LiveChat refused %s)", scope, api.Op),
			"create a personal access token with the scopes chats--all:rw, chats.conversation--all:rw, customers:rw, webhooks.configuration:rw, webhooks.state:rw (and groups--all:ro) and put it in livechat.agentToken")
	case api.Type == "validation" && strings.Contains(api.Op, "webhook"):
		return health.Failed("credentials", fmt.Sprintf("LiveChat refused %s for client id %s: %s", api.Op, c.clientID, api.Message),
			"set LIVECHAT_CLIENT_ID (LiveChatClientId) to the client id of an app of your organization (Developer Console → Apps → your app → Authorization)")
	case api.rateLimited():
		return health.Warning("credentials", "LiveChat answered too_many_requests", "nothing to do: the next run tries again")
	}
	return health.Failed("credentials", fmt.Sprintf("LiveChat refused %s (%s)", api.Op, strconv.Itoa(api.Status)+" "+api.Type),
		"see the function's log for the call, and the LiveChat status page")
}

// configCall posts an action to the Configuration API as the integration's
// agent (Basic PAT).
func (c *Client) configCall(ctx context.Context, action string, applyOnce bool, in, out any) error {
	return c.call(ctx, c.apiURL+"/configuration/action/"+action, "Basic "+c.agentToken, action, applyOnce, in, out)
}
