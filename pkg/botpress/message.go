package botpress

import (
	"encoding/json"
	"net/mail"
	"strings"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// BotUserID is the remoteUserId the integration sends for messages the bot
// wrote itself.
const BotUserID = "BOT"

// typeByField names the Botpress message type a payload without "type" has,
// by the first of its fields found, most specific first: a card also has
// an imageUrl, a choice also has a text.
var typeByField = []struct{ field, typ string }{
	{"markdown", "markdown"},
	{"options", "choice"},
	{"items", "carousel"}, // or bloc, told apart by its items
	{"actions", "card"},
	{"latitude", hitl.TypeLocation},
	{"imageUrl", hitl.TypeImage},
	{"audioUrl", hitl.TypeAudio},
	{"videoUrl", hitl.TypeVideo},
	{"fileUrl", hitl.TypeFile},
	{"text", hitl.TypeText},
}

// DecodeMessage reads a Botpress message payload: its "type" when it has
// one (the hitl plugin sends it), otherwise the type its fields show.
func DecodeMessage(payload json.RawMessage) (hitl.Message, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		return hitl.Message{}, hitl.Errorf(hitl.CodeInvalid, "payload must be a message object")
	}
	var typ string
	if raw, ok := fields["type"]; ok {
		if err := json.Unmarshal(raw, &typ); err != nil {
			return hitl.Message{}, hitl.Errorf(hitl.CodeInvalid, "payload.type must be a string")
		}
	}
	if typ == "" {
		typ = typeOf(fields)
	}
	if typ == "" {
		return hitl.Message{}, hitl.Errorf(hitl.CodeInvalid, "payload is not a message Botpress sends")
	}
	return hitl.DecodeMessage(typ, payload)
}

// typeOf returns the type of a payload by its fields, "" if none fits.
func typeOf(fields map[string]json.RawMessage) string {
	for _, f := range typeByField {
		if _, ok := fields[f.field]; !ok {
			continue
		}
		if f.typ == "carousel" && isBloc(fields["items"]) {
			return "bloc"
		}
		return f.typ
	}
	return ""
}

// isBloc tells a bloc's items ({type, payload}) from a carousel's cards.
func isBloc(items json.RawMessage) bool {
	var first []struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(items, &first) == nil && len(first) > 0 && first[0].Type != ""
}

// RemoteUser reads the end user from createRemoteUser's free-form payload,
// keeping what is usable: a handoff must not fail over an avatar link.
func RemoteUser(p map[string]json.RawMessage) hitl.UserDetails {
	u := hitl.UserDetails{
		Name:       hitl.Clip(strings.TrimSpace(stringField(p, "name")), 512, ""),
		Email:      strings.TrimSpace(stringField(p, "email")),
		Phone:      strings.TrimSpace(stringField(p, "phone")),
		PictureURL: stringField(p, "pictureUrl"),
	}
	if u.Name == "" {
		u.Name = "Botpress user"
	}
	if !realEmail(u.Email) {
		u.Email = ""
	}
	if len(u.Phone) > 512 {
		u.Phone = ""
	}
	if len(u.PictureURL) > 512 || !hitl.HTTPURL(u.PictureURL) {
		u.PictureURL = ""
	}
	return u
}

// stringField returns p[name] if it is a JSON string.
func stringField(p map[string]json.RawMessage, name string) string {
	var s string
	if json.Unmarshal(p[name], &s) != nil {
		return ""
	}
	return s
}

// realEmail accepts a plain address, not the placeholder Botpress makes up
// for users without one (…@<bot>.botpress.invalid: the .invalid top-level
// domain never resolves).
func realEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && len(s) <= 512 && !strings.HasSuffix(strings.ToLower(s), ".invalid")
}

// HistoryMessage is an entry of createRemoteConversation's optional
// "messages" (the published contract; the stock client sends none).
type HistoryMessage struct {
	Text   string `json:"text"`
	Author string `json:"author"`
}

// Transcript turns contract messages into the start of the transcript:
// an author "user" or "end-user" is the end user, any other the bot, named
// when it is neither.
func Transcript(messages []HistoryMessage) ([]hitl.TranscriptEntry, error) {
	out := make([]hitl.TranscriptEntry, 0, len(messages))
	for i, m := range messages {
		from, text := "bot", m.Text
		switch strings.ToLower(m.Author) {
		case "user", "end-user":
			from = "user"
		case "", "bot":
		default:
			text = m.Author + ": " + text
		}
		payload, _ := json.Marshal(map[string]string{"text": text})
		msg, err := hitl.DecodeMessage(hitl.TypeText, payload)
		if err != nil {
			return nil, hitl.Errorf(hitl.CodeInvalid, "messages[%d]: %s", i, hitl.ErrorMessage(err))
		}
		out = append(out, hitl.TranscriptEntry{From: from, Message: msg})
	}
	return out, nil
}
