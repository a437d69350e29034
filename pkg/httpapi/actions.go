package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httplog"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
)

// DeadLetters is the operator's view of undeliverable events.
type DeadLetters interface {
	DeadLetters(ctx context.Context, limit int) ([]hitl.DeadLetter, error)
	Replay(ctx context.Context, sessionID string) (int, error)
}

// ActionsConfig is what the bot-facing routes need.
type ActionsConfig struct {
	Bridge      *hitl.Bridge
	DeadLetters DeadLetters
	BotAPIKeys  []string
	AdminAPIKey string // empty disables the admin routes
	// BotRoutes add the routes of other bots' contracts (such as
	// botpress.Routes.Mount); each guards its own.
	BotRoutes []func(mux *http.ServeMux)
	// PlatformRoutes add the platforms' own routes (integration.Parts.Routes,
	// such as an OAuth connect flow) when AdminAPIKey is not empty. Without
	// an admin key none exists: nobody can start such a flow, so no
	// callback is expected.
	PlatformRoutes []func(mux *http.ServeMux, operator func(integration.HandlerFunc) http.Handler)
	Log            *slog.Logger
}

// Actions returns the handler of the native bot API (/v1/…), the other
// bots' contract routes, the operator and the platforms' routes, and
// /healthz.
func Actions(c ActionsConfig) http.Handler {
	a := &actions{ActionsConfig: c, bots: NewKeyring(c.BotAPIKeys...), admin: NewKeyring(c.AdminAPIKey)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("POST /v1/users", a.bot(a.createUser))
	mux.Handle("POST /v1/sessions", a.bot(a.startSession))
	mux.Handle("GET /v1/sessions/{id}", a.bot(a.getSession))
	mux.Handle("POST /v1/sessions/{id}/messages", a.bot(a.sendMessage))
	mux.Handle("POST /v1/sessions/{id}/stop", a.bot(a.stopSession))
	mux.Handle("POST /v1/sessions/{id}/typing", a.bot(a.typing))
	mux.Handle("POST /v1/sessions/{id}/seen", a.bot(a.seen))
	mux.Handle("GET /v1/availability", a.bot(a.availability))
	mux.Handle("GET /v1/admin/dead-letters", a.operator(a.listDeadLetters))
	mux.Handle("POST /v1/admin/dead-letters/{sessionId}/replay", a.operator(a.replay))
	for _, routes := range c.BotRoutes {
		routes(mux)
	}
	if c.AdminAPIKey != "" {
		operator := func(h integration.HandlerFunc) http.Handler { return a.operator(handlerFunc(h)) }
		for _, routes := range c.PlatformRoutes {
			routes(mux, operator)
		}
	}
	mux.Handle("/", NotFound(c.Log))
	return httplog.Handler(c.Log, Canonical(mux, c.Log))
}

// Canonical answers paths with ".", ".." or "//" elements as unknown routes
// (JSON 404), where ServeMux would redirect to the cleaned path: an API
// does not redirect, and a Botpress token of "." must not reveal that the
// route exists.
func Canonical(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if clean := path.Clean(p); clean != p && clean+"/" != p {
			NotFound(log)(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type actions struct {
	ActionsConfig
	bots, admin Keyring
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *actions) bot(h handlerFunc) http.Handler      { return a.guard(a.bots, h) }
func (a *actions) operator(h handlerFunc) http.Handler { return a.guard(a.admin, h) }

func (a *actions) guard(keys Keyring, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !keys.Has(bearer(r)) {
			WriteError(w, r, a.Log, hitl.Errorf(hitl.CodeUnauthenticated, "a valid API key is required (Authorization: Bearer <key>)"))
			return
		}
		if err := h(w, r); err != nil {
			WriteError(w, r, a.Log, err)
		}
	})
}

func (a *actions) createUser(w http.ResponseWriter, r *http.Request) error {
	var in hitl.UserDetails
	if err := Decode(w, r, &in); err != nil {
		return err
	}
	u, err := a.Bridge.CreateUser(r.Context(), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, map[string]string{"userId": u.ID})
	return nil
}

// historyEntry is one messageHistory item: a Botpress-style message with
// its source.
type historyEntry struct {
	Source struct {
		Type string `json:"type"`
	} `json:"source"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func (a *actions) startSession(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		UserID            string            `json:"userId"`
		Provider          string            `json:"provider"`
		Title             string            `json:"title"`
		Description       string            `json:"description"`
		BotConversationID string            `json:"botConversationId"`
		MessageHistory    []historyEntry    `json:"messageHistory"`
		IfNoAgent         string            `json:"ifNoAgent"`
		Context           map[string]string `json:"context"`
	}
	if err := Decode(w, r, &in); err != nil {
		return err
	}
	if len(in.MessageHistory) > hitl.MaxHistory {
		return hitl.Errorf(hitl.CodeInvalid, "messageHistory has more than %d messages", hitl.MaxHistory)
	}
	history, err := transcript(in.MessageHistory)
	if err != nil {
		return err
	}
	s, err := a.Bridge.StartSession(r.Context(), hitl.StartRequest{
		UserID: in.UserID, Provider: in.Provider, Title: in.Title, Description: in.Description,
		BotConversationID: in.BotConversationID, History: history, IdempotencyKey: r.Header.Get("Idempotency-Key"),
		IfNoAgent: in.IfNoAgent, Context: in.Context,
	})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, struct {
		SessionID              string      `json:"sessionId"`
		Provider               string      `json:"provider"`
		Status                 hitl.Status `json:"status"`
		ProviderConversationID string      `json:"providerConversationId"`
		Agent                  *hitl.Agent `json:"agent,omitempty"`
		Queue                  *hitl.Queue `json:"queue,omitempty"`
	}{s.ID, s.Provider, s.Status, s.ProviderConversationID, s.Agent, s.Queue})
	return nil
}

func transcript(entries []historyEntry) ([]hitl.TranscriptEntry, error) {
	out := make([]hitl.TranscriptEntry, 0, len(entries))
	for i, e := range entries {
		if e.Source.Type != "user" && e.Source.Type != "bot" {
			return nil, hitl.Errorf(hitl.CodeInvalid, `messageHistory[%d].source.type must be "user" or "bot"`, i)
		}
		m, err := hitl.DecodeMessage(e.Type, e.Payload)
		if err != nil {
			return nil, hitl.Errorf(hitl.CodeInvalid, "messageHistory[%d]: %s", i, hitl.ErrorMessage(err))
		}
		out = append(out, hitl.TranscriptEntry{From: e.Source.Type, Message: m})
	}
	return out, nil
}

func (a *actions) getSession(w http.ResponseWriter, r *http.Request) error {
	s, err := a.Bridge.GetSession(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, s)
	return nil
}

func (a *actions) sendMessage(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
		UserID  string          `json:"userId"`
		From    string          `json:"from"`
	}
	if err := Decode(w, r, &in); err != nil {
		return err
	}
	m, err := hitl.DecodeMessage(in.Type, in.Payload)
	if err != nil {
		return err
	}
	var id string
	switch in.From {
	case "", "user":
		id, err = a.Bridge.SendMessage(r.Context(), r.PathValue("id"), in.UserID, m)
	case "bot":
		id, err = a.Bridge.SendBotMessage(r.Context(), hitl.ChannelNative, r.PathValue("id"), m)
	default:
		err = hitl.Errorf(hitl.CodeInvalid, `from must be "user" or "bot"`)
	}
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, map[string]string{"messageId": id})
	return nil
}

func (a *actions) stopSession(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	if len(in.Reason) > 512 {
		return hitl.Errorf(hitl.CodeInvalid, "reason is longer than 512 bytes")
	}
	s, err := a.Bridge.StopSession(r.Context(), r.PathValue("id"), in.Reason)
	if err != nil {
		return err
	}
	a.Log.Info("session stopped by the bot", "session_id", s.ID)
	WriteJSON(w, http.StatusOK, map[string]string{"status": string(s.Status)})
	return nil
}

func (a *actions) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	dead, err := a.DeadLetters.DeadLetters(r.Context(), 500)
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	if dead == nil {
		dead = []hitl.DeadLetter{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"deadLetters": dead})
	return nil
}

func (a *actions) replay(w http.ResponseWriter, r *http.Request) error {
	n, err := a.DeadLetters.Replay(r.Context(), r.PathValue("sessionId"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]int{"replayed": n})
	return nil
}

func (a *actions) typing(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Text string `json:"text"`
	}
	return forward(w, r, &in, func() (bool, error) { return a.Bridge.Typing(r.Context(), r.PathValue("id"), in.Text) })
}

func (a *actions) seen(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		SeenUpTo time.Time `json:"seenUpTo"`
	}
	return forward(w, r, &in, func() (bool, error) { return a.Bridge.MarkSeen(r.Context(), r.PathValue("id"), in.SeenUpTo) })
}

// forward serves a hint the provider may not take (typing, seen): it
// decodes the optional body into in, then answers whether call forwarded it.
func forward(w http.ResponseWriter, r *http.Request, in any, call func() (bool, error)) error {
	if err := decodeOptional(w, r, in); err != nil {
		return err
	}
	forwarded, err := call()
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]bool{"forwarded": forwarded})
	return nil
}

func (a *actions) availability(w http.ResponseWriter, r *http.Request) error {
	provider := r.URL.Query().Get("provider")
	av, err := a.Bridge.Availability(r.Context(), provider)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, struct {
		Provider string `json:"provider"`
		hitl.Availability
	}{cmp.Or(provider, a.Bridge.DefaultProvider), av})
	return nil
}

// decodeOptional decodes a JSON object body into v; an empty body leaves v
// as it is.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return hitl.DecodeJSON(b, v)
}
