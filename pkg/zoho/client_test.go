package zoho_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

func openRequest() hitl.OpenRequest {
	return hitl.OpenRequest{
		SessionID:   "ses_1",
		User:        hitl.User{ID: "usr_1", Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000"},
		Title:       "Refund request",
		Description: "Order 42 arrived broken",
		Transcript: []hitl.TranscriptEntry{
			{From: "user", Message: hitl.Message{Type: hitl.TypeText, Text: "my order is broken"}},
			{From: "bot", Message: hitl.Message{Type: hitl.TypeText, Text: "let me find an agent"}},
			{From: "user", Message: hitl.Message{Type: hitl.TypeImage, URL: "https://cdn.example.com/broken.jpg"}},
		},
	}
}

// opened opens a conversation and returns what Open answered.
func (f *fixture) opened(t *testing.T) hitl.Opened {
	t.Helper()
	opened, err := f.client.Open(context.Background(), openRequest())
	if err != nil {
		t.Fatal(err)
	}
	return opened
}

// open opens a conversation and returns the session the Bridge would keep.
func (f *fixture) open(t *testing.T) hitl.Session {
	t.Helper()
	opened := f.opened(t)
	return hitl.Session{ID: "ses_1", UserID: "usr_1", Provider: hitl.Zoho, ProviderConversationID: opened.ConversationID, Visitor: opened.Visitor}
}

func (f *fixture) conversation(t *testing.T, id string) zohotest.Conversation {
	t.Helper()
	c, ok := f.sim.Conversation(id)
	if !ok {
		t.Fatalf("no conversation %s", id)
	}
	return c
}

func TestOpen(t *testing.T) {
	f := newFixture(t)
	opened := f.opened(t)
	c := f.conversation(t, opened.ConversationID)
	if opened.Visitor.ID != "usr_1" || c.UserID != "usr_1" {
		t.Errorf("visitor %+v, user_id %q", opened.Visitor, c.UserID)
	}
	if c.VisitorName != "Ada Lovelace" || c.VisitorEmail != "ada@example.com" || c.VisitorPhone != "+44 20 7946 0000" {
		t.Errorf("visitor = %q %q %q", c.VisitorName, c.VisitorEmail, c.VisitorPhone)
	}
	o := f.sim.Options()
	if c.AppID != o.AppID || c.DepartmentID != o.DepartmentID || c.Status != zohotest.StatusWaiting {
		t.Errorf("conversation = %+v", c)
	}
	want := "Handoff from the bot: Refund request\n\nOrder 42 arrived broken\n\nConversation so far:\n" +
		"[user] my order is broken\n[bot] let me find an agent\n[user] [image] https://cdn.example.com/broken.jpg"
	if c.Question != want {
		t.Errorf("question = %q, want %q", c.Question, want)
	}
	f.assertNoSecrets(t, f.logs.String())
}

func TestOpenReadsEitherID(t *testing.T) {
	for _, idOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("id only %v", idOnly), func(t *testing.T) {
			f := newFixture(t, withSim(zohotest.Options{AnswerIDOnly: idOnly}))
			opened := f.opened(t)
			if c := f.conversation(t, opened.ConversationID); c.ID != opened.ConversationID {
				t.Errorf("opened %q", opened.ConversationID)
			}
		})
	}
}

func TestOpenAsEachUser(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	ids := make([]string, 2)
	for i, user := range []hitl.User{{ID: "usr_a", Name: "Ann"}, {ID: "usr_b", Name: "Bob"}} {
		wg.Go(func() {
			req := openRequest()
			req.SessionID, req.User = "ses_"+user.ID, user
			opened, err := f.client.Open(context.Background(), req)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = opened.ConversationID
		})
	}
	wg.Wait()
	for i, want := range []struct{ id, name string }{{"usr_a", "Ann"}, {"usr_b", "Bob"}} {
		c := f.conversation(t, ids[i])
		if c.UserID != want.id || c.VisitorName != want.name || c.VisitorEmail != "" {
			t.Errorf("conversation %d: visitor %q %q %q", i, c.UserID, c.VisitorName, c.VisitorEmail)
		}
	}
}

func TestOpenLongTranscript(t *testing.T) {
	f := newFixture(t)
	req := openRequest()
	req.Transcript = nil
	for i := range 80 {
		req.Transcript = append(req.Transcript, hitl.TranscriptEntry{From: "user", Message: hitl.Message{Type: hitl.TypeText, Text: fmt.Sprintf("%d %s", i, strings.Repeat("é", 200))}})
	}
	opened, err := f.client.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	q := f.conversation(t, opened.ConversationID).Question
	if len(q) > hitl.MaxTextBytes || !strings.Contains(q, "messages):\n[user] ") || !strings.HasSuffix(q, "79 "+strings.Repeat("é", 200)) {
		t.Errorf("question of %d bytes: %.200q", len(q), q)
	}
}

func TestOpenDoesNotRepeatOnServerError(t *testing.T) {
	f := newFixture(t)
	f.sim.FailNext("open", 1, zohotest.Fault{Status: 500, Code: 1001, Message: "Unknown error"})
	_, err := f.client.Open(context.Background(), openRequest())
	if hitl.ErrorCode(err) != hitl.CodeProvider || f.sim.Calls("open") != 1 {
		t.Fatalf("err = %v, open called %d times", err, f.sim.Calls("open"))
	}
}

func TestHTTP200ErrorBody(t *testing.T) {
	f := newFixture(t)
	f.sim.FailNext("open", 1, zohotest.Fault{Code: 1300, Message: "Invalid input"})
	_, err := f.client.Open(context.Background(), openRequest())
	var api *zoho.APIError
	if !errors.As(err, &api) || api.Status != 200 || api.Code != 1300 {
		t.Fatalf("err = %v", err)
	}
	if got := hitl.ErrorMessage(err); got != "Zoho SalesIQ refused open (code 1300)" {
		t.Errorf("public message = %q", got)
	}
	if len(f.sim.Conversations()) != 0 {
		t.Error("a conversation was opened")
	}
}

func TestSend(t *testing.T) {
	tests := []struct {
		name     string
		private  bool // the fetcher may reach loopback and plain http
		msg      func(mediaURL string) hitl.Message
		wantText func(mediaURL string) string // a text message
		wantFile string                       // a file of this name
		wantNote string                       // its comment
	}{
		{
			name:     "text",
			msg:      func(string) hitl.Message { return hitl.Message{Type: hitl.TypeText, Text: "hello"} },
			wantText: func(string) string { return "hello" },
		},
		{
			name:     "image uploaded",
			private:  true,
			msg:      func(u string) hitl.Message { return hitl.Message{Type: hitl.TypeImage, URL: u + "/photo.png"} },
			wantFile: "photo.png",
		},
		{
			name:    "file uploaded under its title",
			private: true,
			msg: func(u string) hitl.Message {
				return hitl.Message{Type: hitl.TypeFile, URL: u + "/report.pdf", Title: "Invoice 42.pdf"}
			},
			wantFile: "Invoice 42.pdf", wantNote: "Invoice 42.pdf",
		},
		{
			name:     "over 50 MB sent as link",
			private:  true,
			msg:      func(u string) hitl.Message { return hitl.Message{Type: hitl.TypeVideo, URL: u + "/huge.bin"} },
			wantText: func(u string) string { return "[video] " + u + "/huge.bin" },
		},
		{
			name:     "missing file sent as link",
			private:  true,
			msg:      func(u string) hitl.Message { return hitl.Message{Type: hitl.TypeAudio, URL: u + "/gone.png"} },
			wantText: func(u string) string { return "[audio] " + u + "/gone.png" },
		},
		{
			name: "private address sent as link",
			msg: func(u string) hitl.Message {
				return hitl.Message{Type: hitl.TypeImage, URL: strings.Replace(u, "http:", "https:", 1) + "/photo.png"}
			},
			wantText: func(u string) string { return "[image] https" + strings.TrimPrefix(u, "http") + "/photo.png" },
		},
		{
			name: "plain http sent as link",
			msg: func(u string) hitl.Message {
				return hitl.Message{Type: hitl.TypeFile, URL: u + "/report.pdf", Title: "r.pdf"}
			},
			wantText: func(u string) string { return "[file r.pdf] " + u + "/report.pdf" },
		},
		{
			name: "location as text",
			msg: func(string) hitl.Message {
				return hitl.Message{Type: hitl.TypeLocation, Latitude: 45.5, Longitude: -73.56, Title: "Office"}
			},
			wantText: func(string) string {
				return "Office\nLocation: 45.500000, -73.560000\nhttps://www.openstreetmap.org/?mlat=45.500000&mlon=-73.560000"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withFetcher(media.NewFetcher(media.Config{AllowPrivate: tt.private, MaxBytes: 64 << 20})))
			s := f.open(t)
			m := tt.msg(f.media.URL)
			sent, err := f.client.Send(context.Background(), s, m)
			if err != nil {
				t.Fatal(err)
			}
			msgs := f.conversation(t, s.ProviderConversationID).Messages
			if len(msgs) != 1 {
				t.Fatalf("messages = %+v", msgs)
			}
			last := msgs[0]
			if sent.MessageID != last.ID || sent.Visitor != nil || last.Sender != "visitor" || last.SenderID != "usr_1" {
				t.Errorf("sent = %+v, stored %+v", sent, last)
			}
			if tt.wantText != nil {
				if want := tt.wantText(f.media.URL); last.Text != want || last.File != nil {
					t.Errorf("text = %q, want %q", last.Text, want)
				}
				return
			}
			if last.FileName != tt.wantFile || last.Text != tt.wantNote || len(last.File) == 0 || last.ContentType == "" {
				t.Errorf("file %q (%s, %d bytes), comment %q", last.FileName, last.ContentType, len(last.File), last.Text)
			}
		})
	}
}

func TestSendUploadRefusedSendsLink(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.sim.FailNext("upload", 1, zohotest.Fault{Code: 1303, Message: "File size exceeds the limit"})
	if _, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeImage, URL: f.media.URL + "/photo.png"}); err != nil {
		t.Fatal(err)
	}
	msgs := f.conversation(t, s.ProviderConversationID).Messages
	if len(msgs) != 1 || msgs[0].Text != "[image] "+f.media.URL+"/photo.png" {
		t.Errorf("messages = %+v", msgs)
	}
}

func TestSendToEndedConversation(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	if err := f.client.Close(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	for _, m := range []hitl.Message{
		{Type: hitl.TypeText, Text: "hello?"},
		{Type: hitl.TypeImage, URL: f.media.URL + "/photo.png"},
	} {
		_, err := f.client.Send(context.Background(), s, m)
		if !errors.Is(err, hitl.ErrConversationEnded) || hitl.ErrorCode(err) != hitl.CodeConflict {
			t.Errorf("%s: err = %v, want ErrConversationEnded", m.Type, err)
		}
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	if err := f.client.Close(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if c := f.conversation(t, s.ProviderConversationID); c.Status != zohotest.StatusClosed || c.EndedBy != "api" {
		t.Errorf("conversation %s, ended by %q", c.Status, c.EndedBy)
	}
	// Closing again, or after the operator closed it, is no error.
	if err := f.client.Close(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if f.sim.Calls("close") != 2 || f.sim.Calls("get") != 1 {
		t.Errorf("calls: %q", f.sim.CallLog())
	}
	// A missing conversation is an error.
	s.ProviderConversationID = "19000000000000"
	if err := f.client.Close(context.Background(), s); hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Errorf("missing conversation: %v", err)
	}
}

func TestCloseRetriedOnServerError(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.sim.FailNext("close", 2, zohotest.Fault{Status: 503, Message: "Service Unavailable"})
	if err := f.client.Close(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if f.sim.Calls("close") != 3 || !f.sim.Closed(s.ProviderConversationID) {
		t.Errorf("calls: %q", f.sim.CallLog())
	}
}

func TestInvalidTokenMidConversation(t *testing.T) {
	for _, fault := range []struct {
		name string
		fail func(*zohotest.Server)
	}{
		{"1008 with HTTP 200", func(s *zohotest.Server) { s.ExpireTokens() }},
		{"HTTP 401", func(s *zohotest.Server) {
			s.FailNext("message", 1, zohotest.Fault{Status: 401, Code: 1008, Message: "Invalid OAuth token."})
		}},
	} {
		t.Run(fault.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.open(t)
			old := f.store.token().AccessToken
			f.clock.Advance(5 * time.Minute)
			fault.fail(f.sim) // Zoho refuses the token our clock still trusts

			if _, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "still there?"}); err != nil {
				t.Fatal(err)
			}
			if f.sim.TokenCalls() != 2 || f.sim.Calls("message") != 2 || f.store.token().AccessToken == old {
				t.Errorf("calls: %q", f.sim.CallLog())
			}
			if msgs := f.conversation(t, s.ProviderConversationID).Messages; len(msgs) != 1 {
				t.Errorf("%d messages stored", len(msgs))
			}
			f.assertNoSecrets(t, f.logs.String(), old)
		})
	}
}

func TestExpiredTokenIsRenewedBeforeUse(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.clock.Advance(time.Hour)
	if _, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if f.sim.TokenCalls() != 2 || f.sim.Calls("message") != 1 {
		t.Errorf("calls: %q", f.sim.CallLog())
	}
}

func TestInvalidTokenRefreshedOnlyOnce(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.clock.Advance(5 * time.Minute)
	f.sim.FailNext("message", 2, zohotest.Fault{Code: 1008, Message: "Invalid OAuth token."})
	_, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"})
	if hitl.ErrorCode(err) != hitl.CodeProvider || hitl.ErrorMessage(err) != "Zoho SalesIQ refused the access token" {
		t.Fatalf("err = %v", err)
	}
	if f.sim.TokenCalls() != 2 || f.sim.Calls("message") != 2 {
		t.Errorf("calls: %q", f.sim.CallLog())
	}
	f.assertNoSecrets(t, err.Error())
}

func TestConcurrentInvalidTokenFailures(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.clock.Advance(5 * time.Minute)
	f.sim.ExpireTokens()
	calls := f.sim.TokenCalls()

	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: fmt.Sprint("message ", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.sim.TokenCalls() - calls; n != 1 {
		t.Errorf("%d refresh calls reached Zoho for 50 concurrent failures", n)
	}
	if msgs := f.conversation(t, s.ProviderConversationID).Messages; len(msgs) != 50 {
		t.Errorf("%d messages stored", len(msgs))
	}
	f.assertNoSecrets(t, f.logs.String())
}

func TestRateLimitedRetries(t *testing.T) {
	tests := []struct {
		name      string
		op        string
		fault     zohotest.Fault
		failures  int
		wantErr   error
		wantCode  hitl.Code
		wantCalls int
	}{
		{"1023 retried then sent", "message", zohotest.Fault{Code: 1023, Message: "Too many requests"}, 2, nil, "", 3},
		{"429 retried then sent", "message", zohotest.Fault{Status: 429, Code: 1023, Message: "Too many requests"}, 2, nil, "", 3},
		{"persistent 1023", "message", zohotest.Fault{Code: 1023, Message: "Too many requests"}, 3, hitl.ErrRateLimited, hitl.CodeRateLimited, 3},
		{"5xx not repeated for a message", "message", zohotest.Fault{Status: 502, Message: "Bad Gateway"}, 1, nil, hitl.CodeProvider, 1},
		{"5xx retried for a close", "close", zohotest.Fault{Status: 500, Message: "boom"}, 2, nil, "", 3},
		{"persistent 5xx on close", "close", zohotest.Fault{Status: 500, Message: "boom"}, 3, nil, hitl.CodeProvider, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.open(t)
			f.sim.FailNext(tt.op, tt.failures, tt.fault)
			var err error
			if tt.op == "close" {
				err = f.client.Close(context.Background(), s)
			} else {
				_, err = f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"})
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if (tt.wantCode == "") != (err == nil) || (err != nil && hitl.ErrorCode(err) != tt.wantCode) {
				t.Errorf("err = %v, want code %q", err, tt.wantCode)
			}
			if got := f.sim.Calls(tt.op); got != tt.wantCalls {
				t.Errorf("%s called %d times, want %d", tt.op, got, tt.wantCalls)
			}
		})
	}
}

func TestNewClientValidates(t *testing.T) {
	tokens := &zoho.Tokens{}
	tests := []struct {
		name string
		cfg  zoho.Config
		want string
	}{
		{"unknown region", zoho.Config{Region: "xx", ScreenName: "s", AppID: "a", DepartmentID: "d", Tokens: tokens}, "unknown Zoho region"},
		{"no region", zoho.Config{ScreenName: "s", AppID: "a", DepartmentID: "d", Tokens: tokens}, "unknown Zoho region"},
		{"no screen", zoho.Config{Region: "us", AppID: "a", DepartmentID: "d", Tokens: tokens}, "screen name is required"},
		{"no tokens", zoho.Config{Region: "us", ScreenName: "s", AppID: "a", DepartmentID: "d"}, "token source"},
		{"bad URL", zoho.Config{Region: "us", SalesIQURL: "ftp://x", ScreenName: "s", AppID: "a", DepartmentID: "d", Tokens: tokens}, "SalesIQ URL"},
	}
	for _, tt := range tests {
		if _, err := zoho.NewClient(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := zoho.NewClient(zoho.Config{Region: "uk", ScreenName: "s", AppID: "a", DepartmentID: "d", Tokens: tokens}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

// TestOpenKeepsEveryID: the open answer's conversation_id comes first, its
// other ids are aliases; ids above 2^53 keep every digit.
func TestOpenKeepsEveryID(t *testing.T) {
	f := newFixture(t)
	opened := f.opened(t)
	c := f.conversation(t, opened.ConversationID)
	if n, err := strconv.ParseUint(opened.ConversationID, 10, 64); err != nil || n <= 1<<53 {
		t.Errorf("conversation id %q is not a number above 2^53", opened.ConversationID)
	}
	if len(opened.AltConversationIDs) != 1 || opened.AltConversationIDs[0] != c.VisitorConversationID {
		t.Errorf("aliases %q, visitor conversation id %q", opened.AltConversationIDs, c.VisitorConversationID)
	}
}

// TestOpenWithOperatorAvailable: SalesIQ assigns a free operator as the
// conversation opens, and its assignment and greeting reach the webhook
// before the open call answers; both may precede the open (MaybeOpening)
// and name the conversation Open returns.
func TestOpenWithOperatorAvailable(t *testing.T) {
	pat := zohotest.Operator{ID: "40526000000002001", Name: "Patricia"}
	f := newFixture(t, withSim(zohotest.Options{AvailableOperator: &pat}))
	w := f.webhooks(t)
	var opened atomic.Bool
	var mu sync.Mutex
	var early []hitl.ProviderEvent
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		evs, err := w.Parse(r.Header, body)
		if err != nil || opened.Load() {
			t.Errorf("delivery after the open answer (%v) or refused: %v", opened.Load(), err)
		}
		mu.Lock()
		early = append(early, evs...)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	f.sim.SetWebhookURL(srv.URL)
	o, err := f.client.Open(context.Background(), openRequest())
	opened.Store(true)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(early) != 2 || early[0].Type != hitl.EventAssigned || early[1].Type != hitl.EventMessage ||
		early[1].Message.Text != "Hello, I'm Patricia. How can I help?" {
		t.Fatalf("early events %+v", early)
	}
	for _, e := range early {
		if !e.MaybeOpening || e.ConversationID != o.ConversationID || e.Agent == nil || e.Agent.ID != pat.ID ||
			!slices.Contains(o.AltConversationIDs, e.AltConversationIDs[0]) {
			t.Errorf("event %+v (opened %q %q)", e, o.ConversationID, o.AltConversationIDs)
		}
	}
	if c := f.conversation(t, o.ConversationID); c.Status != zohotest.StatusAttended {
		t.Errorf("conversation %s", c.Status)
	}
}

// TestCloseMethodFallback: when SalesIQ answers that the close method is
// wrong, the other is tried once, and remembered.
func TestCloseMethodFallback(t *testing.T) {
	f := newFixture(t, withSim(zohotest.Options{CloseMethod: http.MethodPost}))
	for i := range 2 {
		s := f.open(t)
		if err := f.client.Close(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if !f.sim.Closed(s.ProviderConversationID) {
			t.Fatalf("close %d did not close", i)
		}
	}
	if n := f.sim.Calls("close"); n != 3 {
		t.Errorf("%d close calls, want PUT, POST, then POST", n)
	}
}

// TestSendToMissedConversation: whether a refused send met an ended
// conversation is read from chat_status's keys and end/missed times.
func TestSendToMissedConversation(t *testing.T) {
	f := newFixture(t)
	f.receive(t)
	s := f.open(t)
	if _, err := f.sim.Missed(s.ProviderConversationID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hello?"}); !errors.Is(err, hitl.ErrConversationEnded) {
		t.Fatalf("err = %v", err)
	}
}
