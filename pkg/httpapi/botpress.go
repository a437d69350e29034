package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// The routes of Botpress's "Human in the Loop API" integration:
// POST /botpress/<token>[/<provider>]/<action>. The integration sends no
// credentials, so the token is a secret in the path, compared in constant
// time; a wrong token, an unknown action or provider, or an empty
// configured token is answered like any unknown route. Logs name the route
// pattern, never the path. What each call carries is in pkg/botpress.
func (a *actions) botpressRoutes(mux *http.ServeMux) {
	for name, act := range map[string]func(w http.ResponseWriter, r *http.Request, provider string) error{
		"ping": func(w http.ResponseWriter, _ *http.Request, _ string) error {
			writeJSON(w, http.StatusOK, struct{}{})
			return nil
		},
		"createRemoteUser":         a.createRemoteUser,
		"createRemoteConversation": a.createRemoteConversation,
		"botSendsMessage":          a.botSendsMessage,
		"closeRemoteTicket":        a.closeRemoteTicket,
	} {
		serve := func(w http.ResponseWriter, r *http.Request) {
			provider := r.PathValue("provider")
			if _, configured := a.Bridge.Providers[provider]; !a.botpress.has(r.PathValue("token")) || (provider != "" && !configured) {
				writeError(w, r, a.Log, hitl.Errorf(hitl.CodeNotFound, "no such route"))
				return
			}
			if err := act(w, r, provider); err != nil {
				writeError(w, r, a.Log, err)
			}
		}
		mux.HandleFunc("POST /botpress/{token}/"+name, serve)
		mux.HandleFunc("POST /botpress/{token}/{provider}/"+name, serve)
	}
}

type idAnswer struct {
	ID string `json:"id"`
}

func (a *actions) createRemoteUser(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		Payload map[string]json.RawMessage `json:"payload"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Payload == nil {
		return hitl.Errorf(hitl.CodeInvalid, "payload must be an object")
	}
	u, err := a.Bridge.CreateUser(r.Context(), botpress.RemoteUser(in.Payload))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, idAnswer{u.ID})
	return nil
}

func (a *actions) createRemoteConversation(w http.ResponseWriter, r *http.Request, provider string) error {
	var in struct {
		Payload struct {
			Title       string                    `json:"title"`
			Description string                    `json:"description"`
			Messages    []botpress.HistoryMessage `json:"messages"`
		} `json:"payload"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if len(in.Payload.Messages) > hitl.MaxHistory {
		return hitl.Errorf(hitl.CodeInvalid, "messages has more than %d entries", hitl.MaxHistory)
	}
	transcript, err := botpress.Transcript(in.Payload.Messages)
	if err != nil {
		return err
	}
	s, err := a.Bridge.CreatePending(r.Context(), hitl.PendingRequest{
		Provider: provider, Channel: hitl.ChannelBotpress,
		Title: in.Payload.Title, Description: in.Payload.Description, Transcript: transcript,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, idAnswer{s.ID})
	return nil
}

func (a *actions) botSendsMessage(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		RemoteConversationID string          `json:"remoteConversationId"`
		RemoteUserID         string          `json:"remoteUserId"`
		Payload              json.RawMessage `json:"payload"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.RemoteConversationID == "" || in.RemoteUserID == "" {
		return hitl.Errorf(hitl.CodeInvalid, "remoteConversationId and remoteUserId are required")
	}
	m, err := botpress.DecodeMessage(in.Payload)
	if err != nil {
		return err
	}
	var id string
	if in.RemoteUserID == botpress.BotUserID {
		id, err = a.Bridge.SendBotMessage(r.Context(), hitl.ChannelBotpress, in.RemoteConversationID, m)
	} else {
		id, err = a.Bridge.SendUserMessage(r.Context(), hitl.ChannelBotpress, in.RemoteConversationID, in.RemoteUserID, m)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		MessageID string `json:"messageId,omitempty"`
	}{id})
	return nil
}

func (a *actions) closeRemoteTicket(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		Payload struct {
			BotpressConversationID string `json:"botpressConversationId"`
		} `json:"payload"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	id := in.Payload.BotpressConversationID
	if id == "" || len(id) > 512 {
		return hitl.Errorf(hitl.CodeInvalid, "payload.botpressConversationId must be 1 to 512 bytes")
	}
	found, err := a.Bridge.StopChannelSession(r.Context(), hitl.ChannelBotpress, id)
	if err != nil {
		return err
	}
	if found {
		a.Log.Info("session stopped by the bot", "session_id", id)
	} else {
		// The client sends its own conversation id, which it never told us.
		a.Log.Info("closeRemoteTicket names no session; it ends when the agent closes it or it is idle", "botpress_conversation", id)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}
