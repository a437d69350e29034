package zoho_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

// The conformance corpus (testdata/conformance, see its README): documented
// bodies, each parsed as it is and with an unknown field of every JSON kind
// added at every object level.

const (
	corpusApp    = "71230000000002041"
	corpusOrg    = "60012345"
	corpusScreen = "northwind"
)

var corpusEventAt = time.UnixMilli(1772366400000)

// corpusBody reads a corpus file's body.
func corpusBody(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "conformance", name))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Doc  string          `json:"doc"`
		Body json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || !strings.HasPrefix(file.Doc, "https://") {
		t.Fatalf("%s: %v (doc %q)", name, err, file.Doc)
	}
	return file.Body
}

func TestConformanceWebhooks(t *testing.T) {
	f := newFixture(t)
	w := mustWebhooks(t, zoho.WebhookConfig{PublicKeys: []string{f.sim.PublicKeyPEM()}, AppID: corpusApp, OrgID: corpusOrg,
		Now: func() time.Time { return corpusEventAt }, Logger: f.logs.Logger()})
	tests := []struct {
		file   string
		want   hitl.EventType // "" for no event
		agent  string
		text   string
		rating *hitl.Rating
		alts   int // aliases of the conversation id
	}{
		{"webhook-attender-updated.json", hitl.EventAssigned, "71230000000002003", "", nil, 1},
		{"webhook-operator-replied.json", hitl.EventMessage, "71230000000002003", "Good afternoon Theo, let me look up that parcel.", nil, 1},
		{"webhook-completed.json", hitl.EventStopped, "", "", nil, 1},
		{"webhook-missed.json", hitl.EventStopped, "", "", nil, 1},
		{"webhook-transfer-accepted.json", hitl.EventTransferred, "71230000000002005", "", nil, 1},
		{"webhook-rated.json", hitl.EventRated, "", "", &hitl.Rating{Score: 3, OutOf: 5, Comment: "Quick and kind"}, 0},
		{"webhook-rated-feedback.json", hitl.EventRated, "", "", &hitl.Rating{Comment: "Kofi sorted it out in minutes"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			for name, body := range simcore.WithUnknownFields(t, corpusBody(t, tt.file)) {
				evs, err := w.Parse(http.Header{zoho.SignatureHeader: {f.sim.Sign(body)}}, body)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if tt.want == "" {
					if len(evs) != 0 {
						t.Fatalf("%s: events %+v", name, evs)
					}
					continue
				}
				if len(evs) != 1 {
					t.Fatalf("%s: events %+v", name, evs)
				}
				e := evs[0]
				if e.Type != tt.want || !strings.HasPrefix(e.ConversationID, "712300000045120") || e.Key == "" ||
					!e.OccurredAt.Equal(corpusEventAt) || len(e.AltConversationIDs) != tt.alts {
					t.Errorf("%s: event %+v", name, e)
				}
				if tt.agent != "" && (e.Agent == nil || e.Agent.ID != tt.agent) {
					t.Errorf("%s: agent %+v", name, e.Agent)
				}
				if tt.text != "" && (e.Message == nil || e.Message.Text != tt.text) {
					t.Errorf("%s: message %+v", name, e.Message)
				}
				if tt.rating != nil && (e.Rating == nil || *e.Rating != *tt.rating) {
					t.Errorf("%s: rating %+v", name, e.Rating)
				}
			}
		})
	}
}

// staticToken is a TokenSource with one token SalesIQ accepts.
type staticToken struct{}

func (staticToken) AccessToken(context.Context) (string, error)        { return "corpus-token", nil }
func (staticToken) Invalidate(context.Context, string) (string, error) { return "corpus-token", nil }

// corpusSalesIQ answers each request by the handler for its method and path.
func corpusClient(t *testing.T, routes map[string]func() []byte) *zoho.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			w.Write([]byte(`{"error":{"code":1006,"message":"Invalid URL"}}`))
			return
		}
		w.Write(answer())
	}))
	t.Cleanup(srv.Close)
	c, err := zoho.NewClient(zoho.Config{Region: "us", SalesIQURL: srv.URL, ScreenName: corpusScreen, AppID: corpusApp,
		DepartmentID: "71230000000002017", Tokens: staticToken{}, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformanceOpenAnswer(t *testing.T) {
	for name, body := range simcore.WithUnknownFields(t, corpusBody(t, "open-answer.json")) {
		c := corpusClient(t, map[string]func() []byte{
			"POST /api/visitor/v1/" + corpusScreen + "/conversations": func() []byte { return body },
		})
		opened, err := c.Open(context.Background(), openRequest())
		if err != nil || opened.ConversationID != "71230000004512031" ||
			len(opened.AltConversationIDs) != 1 || opened.AltConversationIDs[0] != "f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d" {
			t.Errorf("%s: %+v, %v", name, opened, err)
		}
	}
}

// TestConformanceCloseAndGet: the close answer closes; a refused close is
// read back with get, whose documented answer (connected) is not ended,
// while a conversation object with an end_time (the close answer's) is.
func TestConformanceCloseAndGet(t *testing.T) {
	const path = "/api/v2/" + corpusScreen + "/conversations/71230000004512031"
	session := hitl.Session{ID: "ses_1", ProviderConversationID: "71230000004512031"}
	refused := func() []byte { return []byte(`{"error":{"code":1302,"message":"Conversation has already ended"}}`) }
	for name, body := range simcore.WithUnknownFields(t, corpusBody(t, "close-answer.json")) {
		c := corpusClient(t, map[string]func() []byte{"PUT " + path + "/close": func() []byte { return body }})
		if err := c.Close(context.Background(), session); err != nil {
			t.Errorf("close answer, %s: %v", name, err)
		}
		c = corpusClient(t, map[string]func() []byte{"PUT " + path + "/close": refused, "GET " + path: func() []byte { return body }})
		if err := c.Close(context.Background(), session); err != nil {
			t.Errorf("refused, then ended, %s: %v", name, err)
		}
	}
	for name, body := range simcore.WithUnknownFields(t, corpusBody(t, "get-answer.json")) {
		c := corpusClient(t, map[string]func() []byte{"PUT " + path + "/close": refused, "GET " + path: func() []byte { return body }})
		if err := c.Close(context.Background(), session); hitl.ErrorCode(err) != hitl.CodeProvider {
			t.Errorf("refused while connected, %s: %v", name, err)
		}
	}
}

// TestConformanceOperatorList: of the documented operator list, only the
// available operator of the configured department counts.
func TestConformanceOperatorList(t *testing.T) {
	for name, body := range simcore.WithUnknownFields(t, corpusBody(t, "operators-list-answer.json")) {
		c := corpusClient(t, map[string]func() []byte{
			"GET /api/v2/" + corpusScreen + "/operators": func() []byte { return body },
		})
		a, err := c.Availability(context.Background())
		if err != nil || !a.Accepting || a.Agents != 1 {
			t.Errorf("%s: %+v, %v", name, a, err)
		}
	}
}

func TestConformanceTokenAnswers(t *testing.T) {
	tests := []struct {
		file         string
		ok, tooMany  bool
		wantCodeText string
	}{
		{"token-answer.json", true, false, ""},
		{"token-invalid-code.json", false, false, "invalid_code"},
		{"token-access-denied.json", false, true, "Access Denied"},
	}
	for _, tt := range tests {
		for name, body := range simcore.WithUnknownFields(t, corpusBody(t, tt.file)) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(body) // HTTP 200, as Zoho answers refusals too
			}))
			oauth, err := zoho.NewOAuth(zoho.OAuthConfig{Region: "us", AccountsURL: srv.URL, ClientID: "id", ClientSecret: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := oauth.Refresh(context.Background(), "1000.refresh")
			srv.Close()
			var oe *zoho.OAuthError
			switch {
			case tt.ok && (err != nil || !strings.HasPrefix(tok.AccessToken, "1000.") || tok.ExpiresAt.IsZero()):
				t.Errorf("%s, %s: %v", tt.file, name, err)
			case !tt.ok && (!errors.As(err, &oe) || oe.Code != tt.wantCodeText || oe.TooManyRequests() != tt.tooMany):
				t.Errorf("%s, %s: %v", tt.file, name, err)
			}
		}
	}
}
