package hitl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Message types on the wire. Rich types (card, carousel, choice, dropdown,
// markdown, bloc) are accepted and rendered to TypeText when decoded: live
// agents read text.
const (
	TypeText     = "text"
	TypeImage    = "image"
	TypeAudio    = "audio"
	TypeVideo    = "video"
	TypeFile     = "file"
	TypeLocation = "location"
)

// MaxTextBytes bounds a text message; LiveChat takes at most 16 KB per event.
const MaxTextBytes = 16 * 1024

// Message is one message between end user and agent. Its JSON form is the
// bot-facing wire shape {"type": ..., "payload": {...}} shared with Botpress.
type Message struct {
	Type        string
	Text        string  // text; caption of a rich message rendered to text
	URL         string  // image, audio, video, file
	Title       string  // file or location title
	ContentType string  // of a file sent by an agent, when known
	Latitude    float64 // location
	Longitude   float64
	Address     string
}

// IsMedia reports whether the message carries a URL to a file.
func (m Message) IsMedia() bool {
	switch m.Type {
	case TypeImage, TypeAudio, TypeVideo, TypeFile:
		return true
	}
	return false
}

// Readable renders the message as text for a provider that cannot carry its
// type: media as their link, locations as coordinates and a map link.
func (m Message) Readable() string {
	switch m.Type {
	case TypeText:
		return m.Text
	case TypeLocation:
		var b strings.Builder
		if m.Title != "" {
			b.WriteString(m.Title + "\n")
		}
		if m.Address != "" {
			b.WriteString(m.Address + "\n")
		}
		fmt.Fprintf(&b, "Location: %.6f, %.6f\nhttps://www.openstreetmap.org/?mlat=%.6f&mlon=%.6f", m.Latitude, m.Longitude, m.Latitude, m.Longitude)
		return b.String()
	default:
		label := m.Type
		if m.Title != "" {
			label += " " + m.Title
		}
		return fmt.Sprintf("[%s] %s", label, m.URL)
	}
}

type wireMessage struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// MarshalJSON writes the wire shape.
func (m Message) MarshalJSON() ([]byte, error) {
	var p any
	switch m.Type {
	case TypeText:
		p = struct {
			Text string `json:"text"`
		}{m.Text}
	case TypeImage, TypeAudio, TypeVideo, TypeFile:
		// The URL's key names the type: imageUrl, audioUrl, videoUrl, fileUrl.
		media := map[string]string{m.Type + "Url": m.URL}
		if m.Type == TypeFile && m.Title != "" {
			media["title"] = m.Title
		}
		p = media
	case TypeLocation:
		p = struct {
			Latitude  float64 `json:"latitude"`
			Longitude float64 `json:"longitude"`
			Address   string  `json:"address,omitempty"`
			Title     string  `json:"title,omitempty"`
		}{m.Latitude, m.Longitude, m.Address, m.Title}
	default:
		return nil, fmt.Errorf("message type %q cannot be encoded", m.Type)
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireMessage{Type: m.Type, Payload: payload})
}

// UnmarshalJSON reads and validates the wire shape; rich types become text.
// Errors are *Error with CodeInvalid and say which field is wrong.
func (m *Message) UnmarshalJSON(b []byte) error {
	var w wireMessage
	if err := strictDecode(b, &w); err != nil {
		return Errorf(CodeInvalid, "message: %v", err)
	}
	msg, err := DecodeMessage(w.Type, w.Payload)
	if err != nil {
		return err
	}
	*m = msg
	return nil
}

// DecodeMessage validates a message given as a type and its payload.
func DecodeMessage(typ string, payload json.RawMessage) (Message, error) {
	if len(bytes.TrimSpace(payload)) == 0 || bytes.Equal(bytes.TrimSpace(payload), []byte("null")) {
		return Message{}, Errorf(CodeInvalid, "message payload is required")
	}
	var p struct {
		Text      *string  `json:"text"`
		ImageURL  string   `json:"imageUrl"`
		AudioURL  string   `json:"audioUrl"`
		VideoURL  string   `json:"videoUrl"`
		FileURL   string   `json:"fileUrl"`
		Title     string   `json:"title"`
		Latitude  *float64 `json:"latitude"`
		Longitude *float64 `json:"longitude"`
		Address   string   `json:"address"`
	}
	switch typ {
	case TypeText, TypeImage, TypeAudio, TypeVideo, TypeFile, TypeLocation:
		if err := json.Unmarshal(payload, &p); err != nil {
			return Message{}, Errorf(CodeInvalid, "%s payload: %v", typ, jsonProblem(err))
		}
	case "card", "carousel", "choice", "dropdown", "markdown", "bloc":
		text, err := renderRich(typ, payload, 0)
		if err != nil {
			return Message{}, err
		}
		return checkText(Message{Type: TypeText, Text: text})
	case "":
		return Message{}, Errorf(CodeInvalid, "message type is required")
	default:
		return Message{}, Errorf(CodeInvalid, "unsupported message type %q", typ)
	}
	m := Message{Type: typ, Title: p.Title, Address: p.Address}
	switch typ {
	case TypeText:
		if p.Text == nil {
			return Message{}, Errorf(CodeInvalid, "text payload needs a text")
		}
		m.Text = *p.Text
		return checkText(m)
	case TypeImage:
		m.URL = p.ImageURL
	case TypeAudio:
		m.URL = p.AudioURL
	case TypeVideo:
		m.URL = p.VideoURL
	case TypeFile:
		m.URL = p.FileURL
	case TypeLocation:
		if p.Latitude == nil || p.Longitude == nil {
			return Message{}, Errorf(CodeInvalid, "location payload needs latitude and longitude")
		}
		m.Latitude, m.Longitude = *p.Latitude, *p.Longitude
		if math.Abs(m.Latitude) > 90 || math.Abs(m.Longitude) > 180 {
			return Message{}, Errorf(CodeInvalid, "location is out of range")
		}
		return m, nil
	}
	if err := checkURL(m.URL); err != nil {
		return Message{}, Errorf(CodeInvalid, "%s payload: %v", typ, err)
	}
	return m, nil
}

func checkText(m Message) (Message, error) {
	switch {
	case strings.TrimSpace(m.Text) == "":
		return Message{}, Errorf(CodeInvalid, "text must not be empty")
	case !utf8.ValidString(m.Text):
		return Message{}, Errorf(CodeInvalid, "text must be valid UTF-8")
	case len(m.Text) > MaxTextBytes:
		return Message{}, Errorf(CodeInvalid, "text is longer than %d bytes", MaxTextBytes)
	}
	return m, nil
}

func checkURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("a URL is required")
	}
	if !HTTPURL(raw) {
		return fmt.Errorf("URL must be an absolute http(s) URL")
	}
	return nil
}

// renderRich turns a Botpress rich payload into lines an agent can read.
func renderRich(typ string, payload json.RawMessage, depth int) (string, error) {
	if depth > 3 {
		return "", Errorf(CodeInvalid, "%s payload is nested too deeply", typ)
	}
	type option struct {
		Label string `json:"label"`
		Value string `json:"value"`
	}
	type action struct {
		Action string `json:"action"`
		Label  string `json:"label"`
		Value  string `json:"value"`
	}
	type card struct {
		Title    string   `json:"title"`
		Subtitle string   `json:"subtitle"`
		ImageURL string   `json:"imageUrl"`
		Actions  []action `json:"actions"`
	}
	renderCard := func(c card) string {
		lines := []string{c.Title}
		if c.Subtitle != "" {
			lines = append(lines, c.Subtitle)
		}
		if c.ImageURL != "" {
			lines = append(lines, c.ImageURL)
		}
		for _, a := range c.Actions {
			if a.Action == "url" {
				lines = append(lines, fmt.Sprintf("• %s: %s", a.Label, a.Value))
			} else {
				lines = append(lines, "• "+a.Label)
			}
		}
		return strings.Join(lines, "\n")
	}
	bad := func(err error) (string, error) {
		return "", Errorf(CodeInvalid, "%s payload: %v", typ, jsonProblem(err))
	}
	switch typ {
	case "card":
		var c card
		if err := json.Unmarshal(payload, &c); err != nil {
			return bad(err)
		}
		return renderCard(c), nil
	case "carousel":
		var c struct {
			Items []card `json:"items"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			return bad(err)
		}
		parts := make([]string, len(c.Items))
		for i, item := range c.Items {
			parts[i] = renderCard(item)
		}
		return strings.Join(parts, "\n\n"), nil
	case "choice", "dropdown":
		var c struct {
			Text    string   `json:"text"`
			Options []option `json:"options"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			return bad(err)
		}
		lines := []string{c.Text}
		for _, o := range c.Options {
			lines = append(lines, "• "+o.Label)
		}
		return strings.Join(lines, "\n"), nil
	case "markdown":
		var c struct {
			Markdown string `json:"markdown"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			return bad(err)
		}
		return c.Markdown, nil
	case "bloc":
		var c struct {
			Items []wireMessage `json:"items"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			return bad(err)
		}
		parts := make([]string, 0, len(c.Items))
		for _, item := range c.Items {
			switch item.Type {
			case "card", "carousel", "choice", "dropdown", "markdown", "bloc":
				s, err := renderRich(item.Type, item.Payload, depth+1)
				if err != nil {
					return "", err
				}
				parts = append(parts, s)
			default:
				m, err := DecodeMessage(item.Type, item.Payload)
				if err != nil {
					return "", err
				}
				parts = append(parts, m.Readable())
			}
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", Errorf(CodeInvalid, "unsupported message type %q", typ)
}

// DecodeJSON decodes one JSON value from b into v. Its errors are *Error
// with CodeInvalid and name the field at fault without echoing the input.
func DecodeJSON(b []byte, v any) error {
	if err := strictDecode(b, v); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return Errorf(CodeInvalid, "%v", err)
	}
	return nil
}

// strictDecode decodes one JSON value and refuses trailing data.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

// jsonProblem rewrites encoding/json errors into short messages that name
// the field, without echoing input.
func jsonProblem(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("field %q must be %s", field, typeErr.Type.String())
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("malformed JSON at byte %d", syntaxErr.Offset)
	case err.Error() == "unexpected EOF":
		return fmt.Errorf("truncated JSON")
	}
	return err
}
