package zoho

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// The bridge creates its own SalesIQ webhook and the webhook's signing key
// through the REST API:
//   - https://www.zoho.com/salesiq/help/developer-section/get-webhooks-list-v2.html
//   - https://www.zoho.com/salesiq/help/developer-section/create-webhook-v2.html
//     (SalesIQ checks the URL with a HEAD request that must answer 200)
//   - https://www.zoho.com/salesiq/help/developer-section/generate-public-key-webhook-v2.html
//     (at most two keys; the oldest one signs)
//   - https://www.zoho.com/salesiq/help/developer-section/delete-public-key-webhook-v2.html
//     (the last key cannot be deleted)
// The public keys live where the webhook verifier reads them (WebhookStore:
// the Zoho token secret in AWS, the token file locally), beside any keys of
// the config secret.

// WebhookEvents lists the events the bridge subscribes to: the ones Parse
// handles.
func WebhookEvents() []string {
	out := make([]string, 0, len(events))
	for e := range events {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// WebhookKey is a public key of the bridge's webhook.
type WebhookKey struct {
	ID        string    `json:"id"`
	PublicKey string    `json:"publicKey"` // as SalesIQ returned it: PEM or base64 DER
	CreatedAt time.Time `json:"createdAt"`
}

// WebhookState is the bridge's SalesIQ webhook and the public keys that
// verify its deliveries, oldest first. While a key is rotated it holds two:
// the first is dropped once a delivery verified with the second arrives.
type WebhookState struct {
	WebhookID string       `json:"webhookId,omitempty"`
	Keys      []WebhookKey `json:"keys,omitempty"`
}

// WebhookStore keeps the WebhookState where every container reads it.
type WebhookStore interface {
	LoadWebhook(ctx context.Context) (WebhookState, error)
	SaveWebhook(ctx context.Context, s WebhookState) error
}

// remoteWebhook is a webhook as SalesIQ describes it.
type remoteWebhook struct {
	ID      flexString   `json:"id"`
	URL     string       `json:"url"`
	Type    string       `json:"type"`
	Status  string       `json:"status"`
	Secured bool         `json:"secured"`
	AppIDs  []flexString `json:"app_ids"`
	Events  []string     `json:"events"`
	Keys    []remoteKey  `json:"public_keys"`
}

// remoteKey is a public key of a webhook as SalesIQ describes it; Key is
// set only in the answer that created it.
type remoteKey struct {
	ID          flexString `json:"id"`
	Key         string     `json:"key"`
	CreatedTime flexString `json:"created_time"`
}

func (w remoteWebhook) hasKey(id string) bool {
	return slices.ContainsFunc(w.Keys, func(k remoteKey) bool {
		return string(k.ID) == id
	})
}

// fits reports whether w delivers what the bridge needs for appID.
func (w remoteWebhook) fits(appID string) bool {
	for _, e := range WebhookEvents() {
		if !slices.Contains(w.Events, e) {
			return false
		}
	}
	return w.Secured && w.Type == "data" && slices.Contains(w.AppIDs, flexString(appID))
}

// SetupConfig is what webhook setup needs.
type SetupConfig struct {
	// URL is where SalesIQ must send webhooks: the bridge's public URL
	// followed by /webhooks/zoho.
	URL   string
	Store WebhookStore
}

// SetupResult says what a setup run did and found.
type SetupResult struct {
	WebhookID string `json:"webhookId,omitempty"`
	// Created, KeyCreated and Deleted say what this run changed.
	Created    bool     `json:"created"`
	KeyCreated bool     `json:"keyCreated"`
	Deleted    []string `json:"deleted"`
	// Checks are the problems found, each with its fix; empty when all is
	// well.
	Checks []health.Check `json:"checks"`
}

func (c *Client) webhooksPath() string { return "/api/v2/" + c.screen + "/webhooks" }

func (c *Client) listWebhooks(ctx context.Context) ([]remoteWebhook, error) {
	var out struct {
		Data []remoteWebhook `json:"data"`
	}
	err := c.call(ctx, request{op: "list_webhooks", method: http.MethodGet, path: c.webhooksPath() + "?type=data"}, &out)
	return out.Data, err
}

func (c *Client) createWebhook(ctx context.Context, hookURL string) (remoteWebhook, error) {
	payload, err := json.Marshal(map[string]any{
		"type": "data", "url": hookURL, "events": WebhookEvents(), "app_ids": []string{c.appID},
		"secured": true, "version": 1,
	})
	if err != nil {
		return remoteWebhook{}, err
	}
	var out struct {
		Data remoteWebhook `json:"data"`
	}
	// Not repeated when SalesIQ may have created it: the next run's list
	// finds it by its URL.
	err = c.call(ctx, request{op: "create_webhook", method: http.MethodPost, path: c.webhooksPath(),
		contentType: "application/json", body: [][]byte{payload}, applyOnce: true}, &out)
	if err == nil && out.Data.ID == "" {
		err = errors.New("zoho create_webhook: answer has no webhook id")
	}
	return out.Data, err
}

func (c *Client) deleteWebhook(ctx context.Context, id string) error {
	return c.call(ctx, request{op: "delete_webhook", method: http.MethodDelete, path: c.webhooksPath() + "/" + url.PathEscape(id)}, nil)
}

// createKey generates a key for the webhook and returns it: the key of the
// answer that was not there before.
func (c *Client) createKey(ctx context.Context, w remoteWebhook) (WebhookKey, error) {
	var out struct {
		Data remoteWebhook `json:"data"`
	}
	err := c.call(ctx, request{op: "create_webhook_key", method: http.MethodPost,
		path: c.webhooksPath() + "/" + url.PathEscape(string(w.ID)) + "/keys", applyOnce: true}, &out)
	if err != nil {
		return WebhookKey{}, err
	}
	for _, k := range out.Data.Keys {
		if !w.hasKey(string(k.ID)) && k.Key != "" {
			return WebhookKey{ID: string(k.ID), PublicKey: k.Key, CreatedAt: parseTime(string(k.CreatedTime))}, nil
		}
	}
	return WebhookKey{}, errors.New("zoho create_webhook_key: answer has no new public key")
}

func (c *Client) deleteKey(ctx context.Context, webhookID, keyID string) error {
	return c.call(ctx, request{op: "delete_webhook_key", method: http.MethodDelete,
		path: c.webhooksPath() + "/" + url.PathEscape(webhookID) + "/keys/" + url.PathEscape(keyID)}, nil)
}

// SetupWebhook makes sure SalesIQ sends the handled events of the
// configured app to cfg.URL, signed with a key whose public half is in
// cfg.Store: it creates the webhook if there is none for the URL, replaces
// one that lacks an event, the app or signing, removes duplicates, and
// creates a key when the stored ones are not the webhook's. It finishes a
// rotation whose old key is still at SalesIQ. A run that fails halfway is
// finished by the next.
func (c *Client) SetupWebhook(ctx context.Context, cfg SetupConfig) (SetupResult, error) {
	res := SetupResult{Deleted: []string{}, Checks: []health.Check{}}
	if cfg.URL == "" {
		return res, errors.New("zoho webhook setup: the bridge's public URL is not set (PUBLIC_URL)")
	}
	state, err := cfg.Store.LoadWebhook(ctx)
	if err != nil {
		return res, fmt.Errorf("load zoho webhook state: %w", err)
	}
	list, err := c.listWebhooks(ctx)
	if err != nil {
		res.Checks = append(res.Checks, c.apiCheck("webhooks", err))
		return res, fmt.Errorf("list zoho webhooks: %w", err)
	}
	// Ours is the webhook for the URL that fits, the stored one first;
	// other webhooks for the URL (duplicates, or ones lacking an event, the
	// app or signing) are deleted once ours has its key.
	var ours *remoteWebhook
	for i, w := range list {
		if w.URL == cfg.URL && w.fits(c.appID) && (ours == nil || string(w.ID) == state.WebhookID) {
			ours = &list[i]
		}
	}
	if ours == nil {
		w, err := c.createWebhook(ctx, cfg.URL)
		if err != nil {
			res.Checks = append(res.Checks, c.apiCheck("webhooks", err))
			return res, fmt.Errorf("create zoho webhook: %w", err)
		}
		ours, res.Created = &w, true
		c.log.LogAttrs(ctx, slog.LevelInfo, "zoho webhook created", slog.String("webhook_id", string(w.ID)))
	}
	res.WebhookID = string(ours.ID)
	if err := c.ensureKey(ctx, cfg.Store, *ours, state, &res); err != nil {
		res.Checks = append(res.Checks, c.apiCheck("webhook key", err))
		return res, err
	}
	for _, w := range list {
		if w.URL != cfg.URL || w.ID == ours.ID {
			continue
		}
		if err := c.deleteWebhook(ctx, string(w.ID)); err != nil {
			res.Checks = append(res.Checks, c.apiCheck("webhooks", err))
			return res, fmt.Errorf("delete stale zoho webhook %s: %w", w.ID, err)
		}
		res.Deleted = append(res.Deleted, string(w.ID))
	}
	if ours.Status != "" && ours.Status != "enabled" {
		res.Checks = append(res.Checks, health.Failed("webhooks", fmt.Sprintf("the SalesIQ webhook %s is %s", ours.ID, ours.Status),
			"enable it in SalesIQ (Settings → Developers → Webhooks)"))
	}
	return res, nil
}

// ensureKey makes the stored keys the webhook's: it creates a key when none
// of the stored ones belongs to the webhook, and deletes at SalesIQ the keys
// the bridge does not verify with, so that the one it has signs.
func (c *Client) ensureKey(ctx context.Context, store WebhookStore, w remoteWebhook, state WebhookState, res *SetupResult) error {
	var known []WebhookKey
	if state.WebhookID == string(w.ID) {
		for _, k := range state.Keys {
			if w.hasKey(k.ID) {
				known = append(known, k)
			}
		}
	}
	if len(known) == 0 {
		// Make room: SalesIQ keeps two keys at most.
		for len(w.Keys) >= 2 {
			if err := c.deleteKey(ctx, string(w.ID), string(w.Keys[0].ID)); err != nil {
				return fmt.Errorf("delete unknown zoho webhook key: %w", err)
			}
			w.Keys = w.Keys[1:]
		}
		k, err := c.createKey(ctx, w)
		if err != nil {
			return fmt.Errorf("create zoho webhook key: %w", err)
		}
		known, res.KeyCreated = []WebhookKey{k}, true
		if err := store.SaveWebhook(ctx, WebhookState{WebhookID: string(w.ID), Keys: known}); err != nil {
			return fmt.Errorf("save zoho webhook key: %w", err)
		}
		c.log.LogAttrs(ctx, slog.LevelInfo, "zoho webhook key created", slog.String("webhook_id", string(w.ID)), slog.String("key_id", k.ID))
		w.Keys = append(w.Keys, remoteKey{ID: flexString(k.ID)})
	} else if !slices.Equal(known, state.Keys) {
		if err := store.SaveWebhook(ctx, WebhookState{WebhookID: string(w.ID), Keys: known}); err != nil {
			return fmt.Errorf("save zoho webhook keys: %w", err)
		}
	}
	// The oldest key at SalesIQ signs: delete every key older than the
	// newest one the bridge has, so the newest signs (a rotation, or keys
	// the bridge lost).
	newest := known[len(known)-1].ID
	for _, k := range w.Keys {
		if string(k.ID) == newest {
			break
		}
		if err := c.deleteKey(ctx, string(w.ID), string(k.ID)); err != nil {
			return fmt.Errorf("delete old zoho webhook key: %w", err)
		}
	}
	return nil
}

// RotateKey adds a second key to the bridge's webhook and deletes the first
// at SalesIQ, so the second signs from now on. The verifier keeps accepting
// the first until a delivery verified with the second arrives, then drops
// it. A rotation still waiting for that delivery is refused.
func (c *Client) RotateKey(ctx context.Context, store WebhookStore) (WebhookKey, error) {
	state, err := store.LoadWebhook(ctx)
	if err != nil {
		return WebhookKey{}, fmt.Errorf("load zoho webhook state: %w", err)
	}
	switch {
	case state.WebhookID == "" || len(state.Keys) == 0:
		return WebhookKey{}, hitl.Errorf(hitl.CodeConflict, "the bridge has no SalesIQ webhook key yet: run the setup first")
	case len(state.Keys) > 1:
		return WebhookKey{}, hitl.Errorf(hitl.CodeConflict, "a key rotation is under way: the old key is dropped once a delivery signed with the new one arrives")
	}
	list, err := c.listWebhooks(ctx)
	if err != nil {
		return WebhookKey{}, publicError("list zoho webhooks", err)
	}
	i := slices.IndexFunc(list, func(w remoteWebhook) bool { return string(w.ID) == state.WebhookID })
	if i < 0 {
		return WebhookKey{}, hitl.Errorf(hitl.CodeConflict, "the bridge's SalesIQ webhook is gone: run the setup first")
	}
	w := list[i]
	for _, k := range w.Keys { // leftovers of an unfinished rotation
		if string(k.ID) != state.Keys[0].ID {
			if err := c.deleteKey(ctx, state.WebhookID, string(k.ID)); err != nil {
				return WebhookKey{}, publicError("delete zoho webhook key", err)
			}
		}
	}
	w.Keys = slices.DeleteFunc(w.Keys, func(k remoteKey) bool {
		return string(k.ID) != state.Keys[0].ID
	})
	k, err := c.createKey(ctx, w)
	if err != nil {
		return WebhookKey{}, publicError("create zoho webhook key", err)
	}
	state.Keys = append(state.Keys, k)
	if err := store.SaveWebhook(ctx, state); err != nil {
		return WebhookKey{}, fmt.Errorf("save zoho webhook keys: %w", err)
	}
	// Saved first: deliveries signed by either key verify meanwhile.
	if err := c.deleteKey(ctx, state.WebhookID, state.Keys[0].ID); err != nil {
		return k, publicError("delete the old zoho webhook key (the next setup run retries)", err)
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "zoho webhook key rotated", slog.String("webhook_id", state.WebhookID), slog.String("key_id", k.ID))
	return k, nil
}

// scopeOf names the scope each operation of the checks and the setup needs.
var scopeOf = map[string]string{
	"list_webhooks":      "SalesIQ.webhooks.READ",
	"create_webhook":     "SalesIQ.webhooks.CREATE",
	"create_webhook_key": "SalesIQ.webhooks.CREATE",
	"delete_webhook":     "SalesIQ.webhooks.DELETE",
	"delete_webhook_key": "SalesIQ.webhooks.DELETE",
	"get_department":     "SalesIQ.departments.READ",
	"list_apps":          "SalesIQ.Apps.READ",
}

// apiCheck explains a failed call: which credential, setting or scope is
// wrong, never its value.
func (c *Client) apiCheck(name string, err error) health.Check {
	var oe *OAuthError
	var api *APIError
	switch {
	case errors.As(err, &oe) && oe.Code == "invalid_client":
		return health.Failed(name, "Zoho refused the org client (invalid_client): zoho.clientId or zoho.clientSecret is wrong",
			"copy the client id and secret of the org client from the Zoho API console of your data centre into the config secret's zoho block")
	case errors.As(err, &oe) && oe.TooManyRequests():
		return health.Warning(name, "Zoho refused a new access token for now (too many requests)", "nothing to do: the next run tries again")
	case errors.As(err, &oe):
		return health.Failed(name, fmt.Sprintf("Zoho refused the refresh token (%s): it was revoked, or issued to another client", oe.Code),
			"connect Zoho SalesIQ again (the Connect button of /admin, or GET /oauth/zoho/start)")
	case strings.Contains(err.Error(), "no refresh token"):
		return health.Failed(name, "Zoho SalesIQ is not connected: there is no refresh token",
			"connect Zoho SalesIQ (the Connect button of /admin, or GET /oauth/zoho/start) as an admin of the portal")
	case errors.As(err, &api) && api.invalidToken():
		return health.Failed(name, "SalesIQ refuses the access token (code 1008) even after renewing it",
			"connect Zoho SalesIQ again, with an admin of the portal")
	case errors.As(err, &api) && api.Code == 1005:
		return health.Failed(name, fmt.Sprintf("SalesIQ has no portal %q (code 1005)", c.screen),
			"set ZOHO_SCREEN_NAME (ZohoScreenName) to the portal name in your SalesIQ URLs, and ZOHO_REGION to its data centre")
	case errors.As(err, &api) && api.rateLimited():
		return health.Warning(name, "SalesIQ answered too many requests", "nothing to do: the next run tries again")
	case errors.As(err, &api):
		if scope := scopeOf[api.Op]; scope != "" {
			return health.Failed(name, fmt.Sprintf("SalesIQ refused %s (code %d): the token needs the %s scope", api.Op, api.Code, scope),
				"connect Zoho SalesIQ again: the connect flow asks for "+Scopes)
		}
		return health.Failed(name, fmt.Sprintf("SalesIQ refused %s (code %d)", api.Op, api.Code), "see the function's log")
	}
	return health.Failed(name, "Zoho SalesIQ could not be reached: "+outbound.Brief(err), "check ZOHO_REGION and the network path to Zoho, then try again")
}

// Verify checks, without changing anything, that the token works for what
// the bridge does: the portal, the department and the app exist, and the
// token may read webhooks. The OAuth connect calls it before it keeps a
// token.
func (c *Client) Verify(ctx context.Context) []health.Check {
	var checks []health.Check
	var dept struct {
		Data struct {
			ID   flexString `json:"id"`
			Name string     `json:"name"`
		} `json:"data"`
	}
	err := c.call(ctx, request{op: "get_department", method: http.MethodGet,
		path: "/api/v2/" + c.screen + "/departments/" + url.PathEscape(c.departmentID)}, &dept)
	var api *APIError
	switch {
	case err == nil && string(dept.Data.ID) == c.departmentID:
		checks = append(checks, health.Passed("department", fmt.Sprintf("department %s (%s) exists", c.departmentID, dept.Data.Name)))
	case err == nil:
		checks = append(checks, health.Failed("department", fmt.Sprintf("SalesIQ has no department %s", c.departmentID),
			"set ZOHO_DEPARTMENT_ID (ZohoDepartmentId) to the id of a department (Settings → Departments)"))
	case errors.As(err, &api) && !api.invalidToken() && !api.rateLimited() && api.Code != 1005:
		// SalesIQ documents no code for either case.
		checks = append(checks, health.Failed("department",
			fmt.Sprintf("SalesIQ refused to read department %s (code %d): it does not exist, or the token lacks the SalesIQ.departments.READ scope", c.departmentID, api.Code),
			"set ZOHO_DEPARTMENT_ID (ZohoDepartmentId) to the id of a department (Settings → Departments); if it is right, connect again: the connect flow asks for "+Scopes))
	default:
		checks = append(checks, c.apiCheck("department", err))
	}
	var apps struct {
		Data []struct {
			ID   flexString `json:"id"`
			Name string     `json:"name"`
		} `json:"data"`
	}
	if err := c.call(ctx, request{op: "list_apps", method: http.MethodGet, path: "/api/v2/" + c.screen + "/apps"}, &apps); err != nil {
		checks = append(checks, c.apiCheck("app", err))
	} else if i := slices.IndexFunc(apps.Data, func(a struct {
		ID   flexString `json:"id"`
		Name string     `json:"name"`
	}) bool {
		return string(a.ID) == c.appID
	}); i < 0 {
		checks = append(checks, health.Failed("app", fmt.Sprintf("SalesIQ has no app (brand) %s", c.appID),
			"set ZOHO_APP_ID (ZohoAppId) to the id of a brand (Settings → Brands)"))
	} else {
		checks = append(checks, health.Passed("app", fmt.Sprintf("app %s (%s) exists", c.appID, apps.Data[i].Name)))
	}
	if _, err := c.listWebhooks(ctx); err != nil {
		checks = append(checks, c.apiCheck("webhooks", err))
	}
	return checks
}

// Inspect checks, without changing anything, what the bridge needs from
// SalesIQ: Verify's checks, and the webhook: there for cfg.URL, enabled,
// with every handled event, and signed with a key the bridge has.
func (c *Client) Inspect(ctx context.Context, cfg SetupConfig) []health.Check {
	checks := c.Verify(ctx)
	if slices.ContainsFunc(checks, func(ch health.Check) bool { return ch.Name == "webhooks" }) {
		return checks // the token cannot read webhooks
	}
	fix := "POST /v1/admin/setup (or the Setup button of /admin), or wait for the next scheduled run (every 5 minutes)"
	list, err := c.listWebhooks(ctx)
	if err != nil {
		return append(checks, c.apiCheck("webhooks", err))
	}
	state, err := cfg.Store.LoadWebhook(ctx)
	if err != nil {
		return append(checks, health.Failed("webhooks", "the stored webhook keys could not be read", "see the function's log"))
	}
	i := slices.IndexFunc(list, func(w remoteWebhook) bool { return w.URL == cfg.URL && w.fits(c.appID) })
	switch {
	case cfg.URL == "":
		checks = append(checks, health.Failed("webhooks", "the bridge's public URL is not set", "set PUBLIC_URL (locally) or deploy with the template, which sets it"))
	case i < 0:
		checks = append(checks, health.Failed("webhooks",
			"no SalesIQ webhook sends "+strings.Join(WebhookEvents(), ", ")+" of app "+c.appID+" to "+cfg.URL, fix))
	case list[i].Status != "enabled":
		checks = append(checks, health.Failed("webhooks", fmt.Sprintf("the SalesIQ webhook %s is %s", list[i].ID, list[i].Status),
			"enable it in SalesIQ (Settings → Developers → Webhooks)"))
	case string(list[i].ID) != state.WebhookID || !slices.ContainsFunc(state.Keys, func(k WebhookKey) bool { return list[i].hasKey(k.ID) }):
		checks = append(checks, health.Failed("webhooks", "the bridge has no public key of its SalesIQ webhook: every delivery is refused", fix))
	case len(state.Keys) > 1:
		checks = append(checks, health.Passed("webhooks", fmt.Sprintf("webhook %s enabled; key rotation under way (the old key is dropped at the next delivery)", list[i].ID)))
	default:
		checks = append(checks, health.Passed("webhooks", fmt.Sprintf("webhook %s enabled, signed, with the events %s", list[i].ID, strings.Join(WebhookEvents(), ", "))))
	}
	return checks
}

// StaticToken is a TokenSource of one token, for calls made with a token
// that is not stored yet (the OAuth connect's checks).
type StaticToken string

// AccessToken returns the token.
func (t StaticToken) AccessToken(context.Context) (string, error) { return string(t), nil }

// Invalidate fails: there is no other token.
func (t StaticToken) Invalidate(context.Context, string) (string, error) {
	return "", hitl.Errorf(hitl.CodeProvider, "Zoho SalesIQ refused the new access token")
}
