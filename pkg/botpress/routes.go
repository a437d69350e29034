package botpress

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
)

// Channel names the sessions this contract opens: its callbacks go to the
// Sender registered under it, and its routes act only on its sessions.
const Channel = "botpress"

// Bridge is what the routes ask of the bridge (*hitl.Bridge has it).
type Bridge interface {
	HasProvider(name string) bool
	CreateUser(ctx context.Context, in hitl.UserDetails) (hitl.User, error)
	CreateDeferred(ctx context.Context, in hitl.DeferredRequest) (hitl.Session, error)
	SendUserMessage(ctx context.Context, channel, sessionID, userID string, m hitl.Message) (string, error)
	SendBotMessage(ctx context.Context, channel, sessionID string, m hitl.Message) (string, error)
	StopChannelSession(ctx context.Context, channel, sessionID string) (found bool, err error)
}

// Routes serves the calls of Botpress's "Human in the Loop API"
// integration: POST /botpress/<token>[/<provider>]/<action>. The
// integration sends no credentials, so the token is a secret in the path,
// compared in constant time; a wrong token, an unknown action or provider,
// or an empty configured token is answered like any unknown route. Logs
// name the route pattern, never the path.
type Routes struct {
	Bridge    Bridge
	PathToken string // empty disables the routes
	Log       *slog.Logger
}

// Mount adds the routes to mux.
func (rt Routes) Mount(mux *http.ServeMux) {
	token := httpapi.NewKeyring(rt.PathToken)
	for name, act := range map[string]func(w http.ResponseWriter, r *http.Request, provider string) error{
		"ping": func(w http.ResponseWriter, _ *http.Request, _ string) error {
			httpapi.WriteJSON(w, http.StatusOK, struct{}{})
			return nil
		},
		"createRemoteUser":         rt.createRemoteUser,
		"createRemoteConversation": rt.createRemoteConversation,
		"botSendsMessage":          rt.botSendsMessage,
		"closeRemoteTicket":        rt.closeRemoteTicket,
	} {
		serve := func(w http.ResponseWriter, r *http.Request) {
			provider := r.PathValue("provider")
			if !token.Has(r.PathValue("token")) || (provider != "" && !rt.Bridge.HasProvider(provider)) {
				httpapi.WriteError(w, r, rt.Log, hitl.Errorf(hitl.CodeNotFound, "no such route"))
				return
			}
			if err := act(w, r, provider); err != nil {
				httpapi.WriteError(w, r, rt.Log, err)
			}
		}
		mux.HandleFunc("POST /botpress/{token}/"+name, serve)
		mux.HandleFunc("POST /botpress/{token}/{provider}/"+name, serve)
	}
}

type idAnswer struct {
	ID string `json:"id"`
}

func (rt Routes) createRemoteUser(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		Payload map[string]json.RawMessage `json:"payload"`
	}
	if err := httpapi.Decode(w, r, &in); err != nil {
		return err
	}
	if in.Payload == nil {
		return hitl.Errorf(hitl.CodeInvalid, "payload must be an object")
	}
	u, err := rt.Bridge.CreateUser(r.Context(), RemoteUser(in.Payload))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, idAnswer{u.ID})
	return nil
}

// createRemoteConversation records a deferred session: the integration
// names no end user, so the provider conversation opens at the user's
// first message.
func (rt Routes) createRemoteConversation(w http.ResponseWriter, r *http.Request, provider string) error {
	var in struct {
		Payload struct {
			Title       string           `json:"title"`
			Description string           `json:"description"`
			Messages    []HistoryMessage `json:"messages"`
		} `json:"payload"`
	}
	if err := httpapi.Decode(w, r, &in); err != nil {
		return err
	}
	if len(in.Payload.Messages) > hitl.MaxHistory {
		return hitl.Errorf(hitl.CodeInvalid, "messages has more than %d entries", hitl.MaxHistory)
	}
	transcript, err := Transcript(in.Payload.Messages)
	if err != nil {
		return err
	}
	s, err := rt.Bridge.CreateDeferred(r.Context(), hitl.DeferredRequest{
		Provider: provider, Channel: Channel,
		Title: in.Payload.Title, Description: in.Payload.Description, Transcript: transcript,
	})
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, idAnswer{s.ID})
	return nil
}

func (rt Routes) botSendsMessage(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		RemoteConversationID string          `json:"remoteConversationId"`
		RemoteUserID         string          `json:"remoteUserId"`
		Payload              json.RawMessage `json:"payload"`
	}
	if err := httpapi.Decode(w, r, &in); err != nil {
		return err
	}
	if in.RemoteConversationID == "" || in.RemoteUserID == "" {
		return hitl.Errorf(hitl.CodeInvalid, "remoteConversationId and remoteUserId are required")
	}
	m, err := DecodeMessage(in.Payload)
	if err != nil {
		return err
	}
	var id string
	if in.RemoteUserID == BotUserID {
		id, err = rt.Bridge.SendBotMessage(r.Context(), Channel, in.RemoteConversationID, m)
	} else {
		id, err = rt.Bridge.SendUserMessage(r.Context(), Channel, in.RemoteConversationID, in.RemoteUserID, m)
	}
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, struct {
		MessageID string `json:"messageId,omitempty"`
	}{id})
	return nil
}

func (rt Routes) closeRemoteTicket(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		Payload struct {
			BotpressConversationID string `json:"botpressConversationId"`
		} `json:"payload"`
	}
	if err := httpapi.Decode(w, r, &in); err != nil {
		return err
	}
	id := in.Payload.BotpressConversationID
	if id == "" || len(id) > 512 {
		return hitl.Errorf(hitl.CodeInvalid, "payload.botpressConversationId must be 1 to 512 bytes")
	}
	found, err := rt.Bridge.StopChannelSession(r.Context(), Channel, id)
	if err != nil {
		return err
	}
	if found {
		rt.Log.Info("session stopped by the bot", "session_id", id)
	} else {
		// The client sends its own conversation id, which it never told us.
		rt.Log.Info("closeRemoteTicket names no session; it ends when the agent closes it or it is idle", "botpress_conversation", id)
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}
