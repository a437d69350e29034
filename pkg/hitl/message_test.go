package hitl

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeMessage(t *testing.T) {
	tests := []struct {
		name, typ, payload string
		want               Message
		wantErr            string
	}{
		{name: "text", typ: "text", payload: `{"text":"hi"}`, want: Message{Type: TypeText, Text: "hi"}},
		{name: "image", typ: "image", payload: `{"imageUrl":"https://x.test/a.png"}`, want: Message{Type: TypeImage, URL: "https://x.test/a.png"}},
		{name: "audio", typ: "audio", payload: `{"audioUrl":"https://x.test/a.mp3"}`, want: Message{Type: TypeAudio, URL: "https://x.test/a.mp3"}},
		{name: "video", typ: "video", payload: `{"videoUrl":"https://x.test/a.mp4"}`, want: Message{Type: TypeVideo, URL: "https://x.test/a.mp4"}},
		{name: "file", typ: "file", payload: `{"fileUrl":"https://x.test/a.pdf","title":"Invoice"}`, want: Message{Type: TypeFile, URL: "https://x.test/a.pdf", Title: "Invoice"}},
		{name: "location", typ: "location", payload: `{"latitude":45.5,"longitude":-73.6,"address":"Montréal"}`, want: Message{Type: TypeLocation, Latitude: 45.5, Longitude: -73.6, Address: "Montréal"}},
		{name: "markdown", typ: "markdown", payload: `{"markdown":"**bold**"}`, want: Message{Type: TypeText, Text: "**bold**"}},
		{name: "choice", typ: "choice", payload: `{"text":"Pick","options":[{"label":"A","value":"a"},{"label":"B","value":"b"}]}`, want: Message{Type: TypeText, Text: "Pick\n• A\n• B"}},
		{name: "card", typ: "card", payload: `{"title":"T","subtitle":"S","actions":[{"action":"url","label":"Open","value":"https://x.test"},{"action":"postback","label":"Yes","value":"y"}]}`, want: Message{Type: TypeText, Text: "T\nS\n• Open: https://x.test\n• Yes"}},
		{name: "carousel", typ: "carousel", payload: `{"items":[{"title":"One"},{"title":"Two"}]}`, want: Message{Type: TypeText, Text: "One\n\nTwo"}},
		{name: "bloc", typ: "bloc", payload: `{"items":[{"type":"text","payload":{"text":"See"}},{"type":"image","payload":{"imageUrl":"https://x.test/i.png"}}]}`, want: Message{Type: TypeText, Text: "See\n[image] https://x.test/i.png"}},
		{name: "missing text", typ: "text", payload: `{}`, wantErr: "needs a text"},
		{name: "empty text", typ: "text", payload: `{"text":"  "}`, wantErr: "must not be empty"},
		{name: "text wrong type", typ: "text", payload: `{"text":5}`, wantErr: `field "text" must be string`},
		{name: "huge text", typ: "text", payload: `{"text":"` + strings.Repeat("a", MaxTextBytes+1) + `"}`, wantErr: "longer than"},
		{name: "relative url", typ: "image", payload: `{"imageUrl":"/a.png"}`, wantErr: "absolute http(s) URL"},
		{name: "javascript url", typ: "file", payload: `{"fileUrl":"javascript:alert(1)"}`, wantErr: "absolute http(s) URL"},
		{name: "location out of range", typ: "location", payload: `{"latitude":91,"longitude":0}`, wantErr: "out of range"},
		{name: "location missing", typ: "location", payload: `{"latitude":1}`, wantErr: "needs latitude and longitude"},
		{name: "unknown type", typ: "hologram", payload: `{}`, wantErr: "unsupported message type"},
		{name: "no type", typ: "", payload: `{}`, wantErr: "type is required"},
		{name: "null payload", typ: "text", payload: `null`, wantErr: "payload is required"},
		{name: "bloc too deep", typ: "bloc", payload: `{"items":[{"type":"bloc","payload":{"items":[{"type":"bloc","payload":{"items":[{"type":"bloc","payload":{"items":[{"type":"bloc","payload":{"items":[]}}]}}]}}]}}]}`, wantErr: "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMessage(tt.typ, json.RawMessage(tt.payload))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if ErrorCode(err) != CodeInvalid {
					t.Fatalf("code = %s, want invalid_argument", ErrorCode(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMessageJSONRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Type: TypeText, Text: "hello"},
		{Type: TypeImage, URL: "https://x.test/a.png"},
		{Type: TypeAudio, URL: "https://x.test/a.mp3"},
		{Type: TypeVideo, URL: "https://x.test/a.mp4"},
		{Type: TypeFile, URL: "https://x.test/a.pdf", Title: "a.pdf"},
		{Type: TypeLocation, Latitude: 1.5, Longitude: 2.5, Title: "Here"},
	} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Message
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if back != m {
			t.Fatalf("round trip of %s: got %+v, want %+v", b, back, m)
		}
	}
	b, _ := json.Marshal(Message{Type: TypeText, Text: "x"})
	if string(b) != `{"type":"text","payload":{"text":"x"}}` {
		t.Fatalf("wire shape = %s", b)
	}
}

func TestDecodeJSONErrorsDoNotEchoInput(t *testing.T) {
	var v struct {
		Name string `json:"name"`
	}
	for _, in := range []string{`{"name":`, `{"name": 12}`, `{"name":"x"} trailing`, `secret-value`} {
		err := DecodeJSON([]byte(in), &v)
		if err == nil || ErrorCode(err) != CodeInvalid {
			t.Fatalf("%q: err = %v, want invalid_argument", in, err)
		}
		if strings.Contains(err.Error(), "secret-value") {
			t.Fatalf("error echoes the input: %v", err)
		}
	}
}

func TestEventIDIsStableAndDistinct(t *testing.T) {
	a, b := EventID("livechat", "CHAT1", "ev1"), EventID("livechat", "CHAT1", "ev1")
	if a != b || !strings.HasPrefix(a, "evt_") {
		t.Fatalf("ids %q and %q should be equal and prefixed", a, b)
	}
	if EventID("livechat", "CHAT1", "ev2") == a || EventID("livechat", "CHAT1ev", "1") == a {
		t.Fatal("different sources gave the same id")
	}
}
