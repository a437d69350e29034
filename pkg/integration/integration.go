// Package integration is the seam between the bridge and a live-agent
// platform. A platform's package exports one Integration; pkg/app lists
// them, and configuration, wiring, the HTTP routes, the scheduled work and
// the operator's self-check and setup reach a platform only through that
// value. The package knows no platform and nothing of AWS.
//
// A platform's life in a process has three steps: Configure reads its
// environment settings (at start, before any secret is read), CheckSecret
// validates its block of the config secret, and Wire builds its Parts from
// that block and the bridge's shared services.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
)

// Integration is one live-agent platform.
type Integration struct {
	// Name names the platform everywhere: the provider of its sessions and
	// events, its webhook route /webhooks/{Name}, its block of the config
	// secret ({"<Name>": {…}}), its metrics and its part of the self-check.
	Name string
	// EnabledBy is the environment variable whose value turns the platform
	// on (its other settings are read only then).
	EnabledBy string
	// Configure reads the platform's environment settings. Every problem
	// is in the error, each naming its variable, never a value.
	Configure func(env Env) (Platform, error)
}

// Env is the environment as a platform reads it.
type Env struct {
	Getenv func(string) string
	// AllowPrivateURLs is HITL_ALLOW_PRIVATE_URLS: service URLs may be
	// plain http (simulators).
	AllowPrivateURLs bool
}

// Platform is a configured platform: its environment settings read.
type Platform interface {
	// CheckSecret parses the platform's block of the config secret (never
	// empty: a missing block is the caller's to report) and checks it
	// against the settings. Every problem is in the error, each naming its
	// field ("config secret: livechat.webhookSecret is required"), never a
	// value. With ingress the block holds only its ingress part (see
	// Parts.Ingress): only what the webhooks function needs is required.
	CheckSecret(block json.RawMessage, ingress bool) error
	// Wire builds the platform's parts from its checked block and the
	// bridge's services.
	Wire(block json.RawMessage, rt Runtime) (Parts, error)
}

// Runtime is what the bridge lends a platform to wire itself.
type Runtime struct {
	// Ingress is set in the webhooks function: the block holds only its
	// ingress part, and the platform wires only what verifying and parsing
	// webhooks needs (no Provider, no calls to the platform).
	Ingress bool
	// Client makes the platform's API calls.
	Client *http.Client
	// Media fetches the files users send, for upload.
	Media *media.Fetcher
	// Store keeps the platform's own small documents that are no secrets
	// (settings) and takes leases so scheduled work runs once across
	// containers.
	Store Store
	// Documents opens a JSON document the platform keeps for itself (a
	// token, a signing key), by a name unique to it: a Secrets Manager
	// secret in AWS (secretARN, from the platform's settings; nil when it
	// is empty), a 0600 file named <name>.json beside the embedded store
	// locally, memory in tests.
	Documents func(name, secretARN string) Document
	// PublicURL is the bridge's public base URL (PUBLIC_URL), "" when only
	// requests tell it (the actions function).
	PublicURL string
	Log       *slog.Logger
	Now       func() time.Time
}

// Store is what a platform may use of the bridge's store (hitl.Store).
type Store interface {
	Setting(ctx context.Context, name string) ([]byte, error)
	SaveSetting(ctx context.Context, name string, value []byte) error
	AcquireLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error)
}

// Document is a JSON document (a secret in AWS, a file locally).
type Document interface {
	Load(ctx context.Context, v any) error
	Save(ctx context.Context, v any) error
}

// Parts are a wired platform's pieces. Webhooks is required; a nil part is
// a capability the platform lacks.
type Parts struct {
	// Provider opens, sends to and closes conversations, and implements
	// the optional interfaces of pkg/hitl it supports (AvailabilityChecker,
	// TypingNotifier, SeenMarker, BotSender, VisitorRefresher). nil with
	// Runtime.Ingress.
	Provider hitl.Provider
	// Webhooks verifies and parses the deliveries of POST /webhooks/{Name}.
	Webhooks WebhookParser
	// Refresh renews the platform's credentials before they expire; the
	// scheduled run calls it every 5 minutes. Visitor credentials are
	// renewed through the Provider (hitl.VisitorRefresher).
	Refresh func(ctx context.Context) error
	// Preload starts, in the background, the reads the function's events
	// will need (stored webhook keys with Runtime.Ingress, else a stored
	// access token), so that they overlap the cold start of the webhooks
	// and actions functions instead of delaying their first event. nil
	// for none.
	Preload func()
	// Routes adds the platform's own routes to the actions function
	// (connecting an account); they exist only when the operator routes do
	// (an adminApiKey is set). operator guards a handler with the admin key.
	Routes func(mux *http.ServeMux, operator func(HandlerFunc) http.Handler)
	// Inspect is the platform's part of the self-check; webhookURL is
	// where its webhooks must go. It changes nothing.
	Inspect func(ctx context.Context, webhookURL string) []health.Check
	// Setup registers the platform's webhooks to webhookURL (on demand and
	// on every scheduled run). It returns what it did (shown as JSON, nil
	// when it did nothing) and the problems left; the error is for a run
	// that did not complete.
	Setup func(ctx context.Context, webhookURL string) (result any, problems []health.Check, err error)
	// Actions are the platform's buttons on /admin (and their JSON routes).
	Actions []admin.Action
	// Ingress returns the part of a block of the config secret that the
	// webhooks function needs: nothing that lets one call the platform, the
	// bot API or the operator routes. It may ask the platform for what the
	// webhooks function cannot learn itself. nil: that part is "{}".
	Ingress func(ctx context.Context, block json.RawMessage) (json.RawMessage, error)
}

// HandlerFunc is an HTTP handler whose error is answered in the bridge's
// JSON error format.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// WebhookParser verifies a platform's webhook delivery and parses it into
// events. Verification failures are hitl errors with CodeUnauthenticated,
// malformed bodies CodeInvalid; deliveries of no interest give no events.
type WebhookParser interface {
	Parse(h http.Header, body []byte) ([]hitl.ProviderEvent, error)
}

// BodyParser adapts a parser that needs only the body (the secret is
// inside it, as with LiveChat).
type BodyParser func(body []byte) ([]hitl.ProviderEvent, error)

// Parse calls p with the body.
func (p BodyParser) Parse(_ http.Header, body []byte) ([]hitl.ProviderEvent, error) { return p(body) }

// WebhookURL is where a platform's webhooks go under the bridge's base URL.
func WebhookURL(base, name string) string {
	return strings.TrimRight(base, "/") + "/webhooks/" + name
}

// CheckURL requires an absolute https URL; plain http is accepted for
// loopback hosts, and anywhere when allowHTTP (HITL_ALLOW_PRIVATE_URLS, for
// simulators and local bots). name names the setting in the error.
func CheckURL(name, raw string, allowHTTP bool) error {
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

// DecodeBlock decodes a block of the config secret, naming the platform
// in the error and never a value.
func DecodeBlock[S any](name string, block json.RawMessage) (S, error) {
	var sec S
	if err := hitl.DecodeJSON(block, &sec); err != nil {
		return sec, fmt.Errorf("config secret is not valid: in the %s block, %s", name, hitl.ErrorMessage(err))
	}
	return sec, nil
}
