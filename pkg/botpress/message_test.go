package botpress

import (
	"encoding/json"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

func TestDecodeMessage(t *testing.T) {
	tests := []struct {
		name, payload string
		want          hitl.Message
	}{
		{"typed text with the Botpress user", `{"type":"text","text":"hi","userId":"user_1"}`, hitl.Message{Type: hitl.TypeText, Text: "hi"}},
		{"text", `{"text":"hi"}`, hitl.Message{Type: hitl.TypeText, Text: "hi"}},
		{"image", `{"imageUrl":"https://x.test/a.png"}`, hitl.Message{Type: hitl.TypeImage, URL: "https://x.test/a.png"}},
		{"audio", `{"audioUrl":"https://x.test/a.ogg"}`, hitl.Message{Type: hitl.TypeAudio, URL: "https://x.test/a.ogg"}},
		{"video", `{"videoUrl":"https://x.test/a.mp4"}`, hitl.Message{Type: hitl.TypeVideo, URL: "https://x.test/a.mp4"}},
		{"file", `{"fileUrl":"https://x.test/a.pdf","title":"A"}`, hitl.Message{Type: hitl.TypeFile, URL: "https://x.test/a.pdf", Title: "A"}},
		{"location", `{"latitude":1.5,"longitude":2,"address":"Here"}`, hitl.Message{Type: hitl.TypeLocation, Latitude: 1.5, Longitude: 2, Address: "Here"}},
		{"markdown", `{"markdown":"**hi**"}`, hitl.Message{Type: hitl.TypeText, Text: "**hi**"}},
		{"choice", `{"text":"Pick","options":[{"label":"A","value":"a"}]}`, hitl.Message{Type: hitl.TypeText, Text: "Pick\n• A"}},
		{"card with an image", `{"title":"T","imageUrl":"https://x.test/c.png","actions":[]}`, hitl.Message{Type: hitl.TypeText, Text: "T\nhttps://x.test/c.png"}},
		{"carousel", `{"items":[{"title":"A","actions":[]},{"title":"B","actions":[]}]}`, hitl.Message{Type: hitl.TypeText, Text: "A\n\nB"}},
		{"bloc", `{"items":[{"type":"text","payload":{"text":"one"}},{"type":"image","payload":{"imageUrl":"https://x.test/i.png"}}]}`,
			hitl.Message{Type: hitl.TypeText, Text: "one\n[image] https://x.test/i.png"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMessage(json.RawMessage(tt.payload))
			if err != nil || got != tt.want {
				t.Fatalf("DecodeMessage(%s) = %+v, %v; want %+v", tt.payload, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{`null`, `[]`, `"text"`, `{}`, `{"type":7}`, `{"userId":"user_1"}`, `{"type":"hologram"}`} {
		if _, err := DecodeMessage(json.RawMessage(bad)); hitl.ErrorCode(err) != hitl.CodeInvalid {
			t.Errorf("DecodeMessage(%s): err = %v, want invalid_argument", bad, err)
		}
	}
}

func TestRemoteUserKeepsWhatIsUsable(t *testing.T) {
	tests := []struct {
		payload string
		want    hitl.UserDetails
	}{
		{`{"role":"end-user","name":" Ada ","email":"ada@example.com","pictureUrl":"https://x.test/a.png"}`,
			hitl.UserDetails{Name: "Ada", Email: "ada@example.com", PictureURL: "https://x.test/a.png"}},
		{`{"name":"Ada","email":"user_1@bot-1.botpress.invalid"}`, hitl.UserDetails{Name: "Ada"}},
		{`{"name":"Ada","email":"not an email","pictureUrl":"ftp://x"}`, hitl.UserDetails{Name: "Ada"}},
		{`{"name":null,"email":42}`, hitl.UserDetails{Name: "Botpress user"}},
	}
	for _, tt := range tests {
		var p map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tt.payload), &p); err != nil {
			t.Fatal(err)
		}
		if got := RemoteUser(p); got != tt.want {
			t.Errorf("RemoteUser(%s) = %+v, want %+v", tt.payload, got, tt.want)
		}
	}
}

func TestTranscriptOfContractMessages(t *testing.T) {
	got, err := Transcript([]HistoryMessage{{Text: "hi", Author: "user"}, {Text: "hello"}, {Text: "I'm Sam", Author: "Sam"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []hitl.TranscriptEntry{
		{From: "user", Message: hitl.Message{Type: hitl.TypeText, Text: "hi"}},
		{From: "bot", Message: hitl.Message{Type: hitl.TypeText, Text: "hello"}},
		{From: "bot", Message: hitl.Message{Type: hitl.TypeText, Text: "Sam: I'm Sam"}},
	}
	if len(got) != len(want) {
		t.Fatalf("transcript = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := Transcript([]HistoryMessage{{Text: " "}}); hitl.ErrorCode(err) != hitl.CodeInvalid {
		t.Errorf("empty text: err = %v", err)
	}
}
