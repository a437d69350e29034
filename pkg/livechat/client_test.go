package livechat_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/media/mediatest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

const groupID = 7

type fixture struct {
	sim    *livechattest.Server
	client *livechat.Client
	media  *httptest.Server // mediatest's
	logs   *simcore.Logs
	now    time.Time
	cfg    livechat.Config
}

type option func(*livechat.Config)

func withMedia(f *media.Fetcher) option { return func(c *livechat.Config) { c.Media = f } }

func newFixture(t *testing.T, opts ...option) *fixture {
	t.Helper()
	f := &fixture{sim: livechattest.New(livechattest.Options{}), logs: &simcore.Logs{}, now: time.Now()}
	t.Cleanup(f.sim.Close)
	f.media = mediatest.NewServer()
	t.Cleanup(f.media.Close)
	o := f.sim.Options()
	cfg := livechat.Config{
		APIURL:         f.sim.APIURL(),
		AccountsURL:    f.sim.AccountsURL(),
		OrganizationID: o.OrganizationID,
		ClientID:       o.ClientID,
		RedirectURI:    "https://bridge.example.com",
		GroupID:        groupID,
		AgentToken:     f.sim.AgentToken(),
		Media:          media.NewFetcher(media.Config{AllowPrivate: true}),
		Now:            func() time.Time { return f.now },
		Logger:         f.logs.Logger(),
		RetryDelay:     time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := livechat.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.client, f.cfg = c, cfg
	return f
}

func openRequest() hitl.OpenRequest {
	return hitl.OpenRequest{
		SessionID:   "ses_1",
		User:        hitl.User{ID: "usr_1", Name: "Ada Lovelace", Email: "ada@example.com"},
		Title:       "Refund request",
		Description: "Order 42 arrived broken",
		Transcript: []hitl.TranscriptEntry{
			{From: "user", Message: hitl.Message{Type: hitl.TypeText, Text: "my order is broken"}},
			{From: "bot", Message: hitl.Message{Type: hitl.TypeText, Text: "let me find an agent"}},
		},
	}
}

// open opens a chat and returns the session the Bridge would keep.
func (f *fixture) open(t *testing.T) hitl.Session {
	t.Helper()
	opened, err := f.client.Open(context.Background(), openRequest())
	if err != nil {
		t.Fatal(err)
	}
	return hitl.Session{ID: "ses_1", Provider: hitl.LiveChat, ProviderConversationID: opened.ConversationID, Visitor: opened.Visitor}
}

func (f *fixture) chat(t *testing.T, id string) livechattest.Chat {
	t.Helper()
	c, ok := f.sim.Chat(id)
	if !ok {
		t.Fatalf("no chat %s", id)
	}
	return c
}

func TestOpen(t *testing.T) {
	f := newFixture(t)
	req := openRequest()
	var kept []string
	var callsWhenKept int
	req.KeepConversation = func(_ context.Context, ids ...string) error {
		kept, callsWhenKept = ids, len(f.sim.CallLog())
		return nil
	}
	opened, err := f.client.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// Recorded once the chat exists and before transfer_chat routes it.
	if !slices.Equal(kept, []string{opened.ConversationID}) || callsWhenKept != 3 {
		t.Errorf("kept %q after %d calls, want the chat after start_chat", kept, callsWhenKept)
	}

	v := opened.Visitor
	token, cookies := credentials(t, v)
	if v.ID == "" || token == "" || len(cookies) != 2 {
		t.Fatalf("visitor %s: token %q, cookies %q", v.ID, token, cookies)
	}
	if want := f.now.Add(8 * time.Hour); !v.CredentialsExpireAt.Equal(want) {
		t.Errorf("token expires at %v, want %v", v.CredentialsExpireAt, want)
	}
	if !strings.HasPrefix(cookies[0], "__lc_cid=") || !strings.HasPrefix(cookies[1], "__lc_cst=") {
		t.Errorf("cookies = %q", cookies)
	}
	customer, _ := f.sim.Customer(v.ID)
	if customer.Name != "Ada Lovelace" || customer.Email != "ada@example.com" {
		t.Errorf("customer = %+v", customer)
	}

	chat := f.chat(t, opened.ConversationID)
	if chat.GroupID != groupID || !chat.Continuous || !chat.Active || !chat.Queued {
		t.Errorf("chat = group %d continuous %v active %v queued %v", chat.GroupID, chat.Continuous, chat.Active, chat.Queued)
	}
	if len(chat.Users) != 1 || chat.Users[0].ID != v.ID || chat.Users[0].Visibility != "all" {
		t.Errorf("users = %+v, want the customer alone (the integration agent leaves on transfer)", chat.Users)
	}
	var texts []string
	for _, e := range chat.Events {
		texts = append(texts, e.Text)
		if e.CustomID != "hitl-bridge:ses_1" {
			t.Errorf("event %s custom_id = %q", e.ID, e.CustomID)
		}
	}
	want := []string{
		"Handoff from the bot: Refund request\n\nOrder 42 arrived broken\n\nConversation so far:",
		"[user] my order is broken",
		"[bot] let me find an agent",
	}
	if !slices.Equal(texts, want) {
		t.Errorf("events = %q, want %q", texts, want)
	}

	wantCalls := []string{"accounts/token", "customer/update_customer", "agent/start_chat", "agent/transfer_chat"}
	if got := f.sim.CallLog(); !slices.Equal(got, wantCalls) {
		t.Errorf("calls = %q, want %q", got, wantCalls)
	}
	assertNoSecrets(t, f.logs.String(), f.sim, v)
}

func TestOpenLongTranscript(t *testing.T) {
	f := newFixture(t)
	req := openRequest()
	req.Transcript = nil
	for range 80 {
		req.Transcript = append(req.Transcript, hitl.TranscriptEntry{From: "user", Message: hitl.Message{Type: hitl.TypeText, Text: strings.Repeat("é", 9000)}})
	}
	opened, err := f.client.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	chat := f.chat(t, opened.ConversationID)
	if len(chat.Events) != 50 || !strings.Contains(chat.Events[0].Text, "last 49 of 80 messages") {
		t.Errorf("%d events, header %q", len(chat.Events), chat.Events[0].Text)
	}
}

func TestOpenReusesVisitor(t *testing.T) {
	f := newFixture(t)
	first, err := f.client.Open(context.Background(), openRequest())
	if err != nil {
		t.Fatal(err)
	}

	req := openRequest()
	req.Visitor = first.Visitor
	second, err := f.client.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if second.Visitor.ID != first.Visitor.ID || f.sim.Calls("token") != 1 {
		t.Errorf("visitor %s vs %s, %d token grants", second.Visitor.ID, first.Visitor.ID, f.sim.Calls("token"))
	}

	// A stored visitor whose token has expired is renewed, not replaced.
	f.now = f.now.Add(9 * time.Hour)
	f.sim.Advance(9 * time.Hour)
	third, err := f.client.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if third.Visitor.ID != first.Visitor.ID || token(t, third.Visitor) == token(t, first.Visitor) || f.sim.Calls("token") != 2 {
		t.Errorf("visitor %+v after expiry, %d token grants", third.Visitor, f.sim.Calls("token"))
	}
	// The chat was handed over the first time: resuming leaves it be.
	if second.ConversationID != first.ConversationID || third.ConversationID != first.ConversationID ||
		f.sim.Calls("start_chat") != 1 || f.sim.Calls("transfer_chat") != 1 {
		t.Errorf("chats %s %s %s, calls %q", first.ConversationID, second.ConversationID, third.ConversationID, f.sim.CallLog())
	}
}

// TestOpenAfterCrashFinishesTheHandoff: an attempt dies once start_chat
// answered (here: recording the chat fails); the takeover finds the chat
// through the customer's list_chats, records it before anything routes it,
// and transfers it, since the integration's agent still holds it.
func TestOpenAfterCrashFinishesTheHandoff(t *testing.T) {
	f := newFixture(t)
	req := openRequest()
	var visitor hitl.Visitor
	req.KeepVisitor = func(_ context.Context, v hitl.Visitor) error { visitor = v; return nil }
	req.KeepConversation = func(context.Context, ...string) error { return errors.New("store down") }
	if _, err := f.client.Open(context.Background(), req); err == nil {
		t.Fatal("open succeeded although the chat could not be kept")
	}
	if f.sim.Calls("transfer_chat") != 0 || f.sim.Calls("deactivate_chat") != 0 {
		t.Fatalf("calls after the failed attempt: %q", f.sim.CallLog())
	}

	req.Visitor = visitor
	var kept []string
	req.KeepConversation = func(_ context.Context, ids ...string) error {
		if f.sim.Calls("transfer_chat") != 0 {
			t.Error("kept after transfer_chat")
		}
		kept = ids
		return nil
	}
	opened, err := f.client.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	chat := f.chat(t, opened.ConversationID)
	if !slices.Equal(kept, []string{chat.ID}) || !chat.Queued || f.sim.Calls("start_chat") != 1 || f.sim.Calls("transfer_chat") != 1 {
		t.Errorf("kept %q, chat queued %v, calls %q", kept, chat.Queued, f.sim.CallLog())
	}
	if len(chat.Users) != 1 || chat.Users[0].ID != visitor.ID {
		t.Errorf("users = %+v", chat.Users)
	}
}

func TestOpenFollowsMisdirectedRequest(t *testing.T) {
	sim := livechattest.New(livechattest.Options{Region: "fra"})
	defer sim.Close()
	o := sim.Options()
	logs := &simcore.Logs{}
	c, err := livechat.NewClient(livechat.Config{
		APIURL: sim.APIURL(), AccountsURL: sim.AccountsURL(), OrganizationID: o.OrganizationID, ClientID: o.ClientID,
		GroupID: groupID, AgentToken: sim.AgentToken(), RetryDelay: time.Millisecond,
		Logger: logs.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The PAT says dal; the organization lives in fra. The first Agent API
	// call is redirected once and every later call goes to fra at once.
	if _, err := c.Open(context.Background(), openRequest()); err != nil {
		t.Fatal(err)
	}
	if sim.Calls("start_chat") != 2 || sim.Calls("transfer_chat") != 1 || len(sim.Chats()) != 1 {
		t.Errorf("calls %q", sim.CallLog())
	}
	if !strings.Contains(logs.String(), `"region":"fra"`) {
		t.Errorf("redirect not logged: %s", logs.String())
	}
}

func TestIntegrationAgentID(t *testing.T) {
	f := newFixture(t)
	f.sim.FailNext("get_account", 3, livechattest.Fault{Status: 503, Type: "internal"})
	if _, err := f.client.IntegrationAgentID(context.Background()); err == nil {
		t.Fatal("no error while the accounts server fails")
	}
	for range 2 {
		id, err := f.client.IntegrationAgentID(context.Background())
		if err != nil || id != f.sim.Options().IntegrationAgentID {
			t.Fatalf("id %q, err %v", id, err)
		}
	}
	// Three failed attempts, then one answer, remembered.
	if f.sim.Calls("get_account") != 4 {
		t.Errorf("get_account called %d times", f.sim.Calls("get_account"))
	}
}

func TestOpenRetriesIdempotentCalls(t *testing.T) {
	f := newFixture(t)
	f.sim.FailNext("transfer_chat", 1, livechattest.Fault{Status: 503, Type: "service_unavailable", Message: "try later"})
	f.sim.FailNext("update_customer", 1, livechattest.Fault{Status: 429, Type: "too_many_requests"})
	if _, err := f.client.Open(context.Background(), openRequest()); err != nil {
		t.Fatal(err)
	}
	if f.sim.Calls("transfer_chat") != 2 || f.sim.Calls("update_customer") != 2 || f.sim.Calls("start_chat") != 1 {
		t.Errorf("calls: %q", f.sim.CallLog())
	}
}

func TestOpenDoesNotRepeatStartChatOnServerError(t *testing.T) {
	f := newFixture(t)
	f.sim.FailNext("start_chat", 1, livechattest.Fault{Status: 500, Type: "internal", Message: "boom"})
	_, err := f.client.Open(context.Background(), openRequest())
	if hitl.ErrorCode(err) != hitl.CodeProvider || f.sim.Calls("start_chat") != 1 {
		t.Fatalf("err = %v, start_chat called %d times", err, f.sim.Calls("start_chat"))
	}
}

func TestOpenAbandonsChatThatCannotBeTransferred(t *testing.T) {
	f := newFixture(t)
	f.sim.FailNext("transfer_chat", 3, livechattest.Fault{Status: 500, Type: "internal", Message: "boom"})
	_, err := f.client.Open(context.Background(), openRequest())
	if hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Fatalf("err = %v", err)
	}
	if got := hitl.ErrorMessage(err); got != "LiveChat refused transfer_chat (internal)" {
		t.Errorf("public message = %q", got)
	}
	if f.sim.Calls("transfer_chat") != 3 || f.sim.Calls("deactivate_chat") != 1 {
		t.Errorf("calls: %q", f.sim.CallLog())
	}
}

func TestOpenKeepsGoingWhenEmailIsRejected(t *testing.T) {
	f := newFixture(t)
	req := openRequest()
	req.User.Email = "not-an-email"
	if _, err := f.client.Open(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func TestSend(t *testing.T) {
	tests := []struct {
		name     string
		private  bool // the fetcher may reach loopback and plain http
		msg      func(mediaURL string) hitl.Message
		wantType string
		wantText func(mediaURL string) string // for text events
		wantName string                       // for file events
	}{
		{
			name:     "text",
			msg:      func(string) hitl.Message { return hitl.Message{Type: hitl.TypeText, Text: "hello"} },
			wantType: "message", wantText: func(string) string { return "hello" },
		},
		{
			name:     "image uploaded",
			private:  true,
			msg:      func(u string) hitl.Message { return hitl.Message{Type: hitl.TypeImage, URL: u + "/photo.png"} },
			wantType: "file", wantName: "photo.png",
		},
		{
			name:    "file uploaded under its title",
			private: true,
			msg: func(u string) hitl.Message {
				return hitl.Message{Type: hitl.TypeFile, URL: u + "/report.pdf", Title: "Invoice 42.pdf"}
			},
			wantType: "file", wantName: "Invoice 42.pdf",
		},
		{
			// The file must be what the message type says (pkg/media).
			name:     "audio that is a PDF sent as link",
			private:  true,
			msg:      func(u string) hitl.Message { return hitl.Message{Type: hitl.TypeAudio, URL: u + "/report.pdf"} },
			wantType: "message", wantText: func(u string) string { return "[audio] " + u + "/report.pdf" },
		},
		{
			name:     "video over 10 MB sent as link",
			private:  true,
			msg:      func(u string) hitl.Message { return hitl.Message{Type: hitl.TypeVideo, URL: u + "/stream.bin"} },
			wantType: "message", wantText: func(u string) string { return "[video] " + u + "/stream.bin" },
		},
		{
			name:     "video declared over 10 MB sent as link",
			private:  true,
			msg:      func(u string) hitl.Message { return hitl.Message{Type: hitl.TypeVideo, URL: u + "/huge.bin"} },
			wantType: "message", wantText: func(u string) string { return "[video] " + u + "/huge.bin" },
		},
		{
			name:     "missing file sent as link",
			private:  true,
			msg:      func(u string) hitl.Message { return hitl.Message{Type: hitl.TypeImage, URL: u + "/gone.png"} },
			wantType: "message", wantText: func(u string) string { return "[image] " + u + "/gone.png" },
		},
		{
			name: "private address sent as link",
			msg: func(u string) hitl.Message {
				return hitl.Message{Type: hitl.TypeImage, URL: strings.Replace(u, "http:", "https:", 1) + "/photo.png"}
			},
			wantType: "message", wantText: func(u string) string { return "[image] https" + strings.TrimPrefix(u, "http") + "/photo.png" },
		},
		{
			name: "plain http sent as link",
			msg: func(u string) hitl.Message {
				return hitl.Message{Type: hitl.TypeFile, URL: u + "/report.pdf", Title: "r.pdf"}
			},
			wantType: "message", wantText: func(u string) string { return "[file r.pdf] " + u + "/report.pdf" },
		},
		{
			name: "location as text",
			msg: func(string) hitl.Message {
				return hitl.Message{Type: hitl.TypeLocation, Latitude: 45.5, Longitude: -73.56, Title: "Office"}
			},
			wantType: "message",
			wantText: func(string) string {
				return "Office\nLocation: 45.500000, -73.560000\nhttps://www.openstreetmap.org/?mlat=45.500000&mlon=-73.560000"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withMedia(media.NewFetcher(media.Config{AllowPrivate: tt.private})))
			s := f.open(t)
			m := tt.msg(f.media.URL)
			sent, err := f.client.Send(context.Background(), s, m)
			if err != nil {
				t.Fatal(err)
			}
			chat := f.chat(t, s.ProviderConversationID)
			last := chat.Events[len(chat.Events)-1]
			if sent.MessageID != last.ID || sent.Visitor != nil {
				t.Errorf("sent = %+v, last event %s", sent, last.ID)
			}
			if last.Type != tt.wantType || last.AuthorID != s.Visitor.ID || last.CustomID != "hitl-bridge:ses_1" {
				t.Fatalf("last event = %+v", last)
			}
			if tt.wantType == "message" {
				if want := tt.wantText(f.media.URL); last.Text != want {
					t.Errorf("text = %q, want %q", last.Text, want)
				}
				return
			}
			body, _, ok := f.sim.File(last.URL)
			if !ok || last.Name != tt.wantName || len(body) == 0 {
				t.Errorf("file event %+v (stored %v)", last, ok)
			}
		})
	}
}

func TestSendWithoutFetcherSendsLinks(t *testing.T) {
	f := newFixture(t, withMedia(nil))
	s := f.open(t)
	if _, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeImage, URL: f.media.URL + "/photo.png"}); err != nil {
		t.Fatal(err)
	}
	chat := f.chat(t, s.ProviderConversationID)
	if last := chat.Events[len(chat.Events)-1]; last.Text != "[image] "+f.media.URL+"/photo.png" {
		t.Errorf("last = %+v", last)
	}
}

func TestSendRenewsRefusedToken(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.sim.ExpireTokens() // LiveChat refuses it although our clock says it is valid

	sent, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "still there?"})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Visitor == nil || sent.Visitor.ID != s.Visitor.ID || token(t, *sent.Visitor) == token(t, s.Visitor) {
		t.Fatalf("sent.Visitor = %+v", sent.Visitor)
	}
	if f.sim.Calls("send_event") != 2 || f.sim.Calls("token") != 2 {
		t.Errorf("calls: %q", f.sim.CallLog())
	}
	assertNoSecrets(t, f.logs.String(), f.sim, s.Visitor, *sent.Visitor)
}

func TestSendRenewsTokenAboutToExpire(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.now = s.Visitor.CredentialsExpireAt.Add(-30 * time.Second)

	sent, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Visitor == nil || f.sim.Calls("send_event") != 1 || f.sim.Calls("token") != 2 {
		t.Errorf("visitor %v, calls %q", sent.Visitor, f.sim.CallLog())
	}
}

func TestSendRenewsOnlyOnce(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.sim.FailNext("send_event", 2, livechattest.Fault{Status: 401, Type: "authentication", Message: "Invalid access token"})

	sent, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"})
	if hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Fatalf("err = %v", err)
	}
	if sent.Visitor == nil {
		t.Error("the renewed visitor is lost")
	}
	if f.sim.Calls("send_event") != 2 || f.sim.Calls("token") != 2 {
		t.Errorf("calls: %q", f.sim.CallLog())
	}
	if strings.Contains(err.Error(), token(t, s.Visitor)) || strings.Contains(err.Error(), token(t, *sent.Visitor)) {
		t.Error("error quotes a token")
	}
}

func TestSendToClosedChat(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	if err := f.client.Close(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hello?"})
	if !errors.Is(err, hitl.ErrConversationEnded) || hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Fatalf("err = %v, want ErrConversationEnded", err)
	}
}

func TestSendRateLimited(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		wantErr   error
		wantCalls int
	}{
		{"retried then sent", 2, nil, 3},
		{"persistent", 3, hitl.ErrRateLimited, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.open(t)
			f.sim.FailNext("send_event", tt.failures, livechattest.Fault{Status: 429, Type: "too_many_requests", Message: "Too many requests"})
			_, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := f.sim.Calls("send_event"); got != tt.wantCalls {
				t.Errorf("send_event called %d times, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestSendDoesNotRepeatOnServerError(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.sim.FailNext("send_event", 1, livechattest.Fault{Status: 500, Type: "internal", Message: "boom"})
	_, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"})
	if hitl.ErrorCode(err) != hitl.CodeProvider || f.sim.Calls("send_event") != 1 {
		t.Fatalf("err = %v, send_event called %d times", err, f.sim.Calls("send_event"))
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	for range 2 {
		if err := f.client.Close(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	if f.chat(t, s.ProviderConversationID).Active || f.sim.Calls("deactivate_chat") != 2 {
		t.Errorf("chat still active or calls %q", f.sim.CallLog())
	}
}

func TestRefreshVisitor(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	f.now = f.now.Add(7 * time.Hour)

	v, err := f.client.RefreshVisitor(context.Background(), s.Visitor)
	if err != nil {
		t.Fatal(err)
	}
	oldToken, oldCookies := credentials(t, s.Visitor)
	newToken, newCookies := credentials(t, v)
	if v.ID != s.Visitor.ID || newToken == oldToken || !v.CredentialsExpireAt.Equal(f.now.Add(8*time.Hour)) || !slices.Equal(newCookies, oldCookies) {
		t.Errorf("refreshed %+v from %+v", v, s.Visitor)
	}

	// Unrecognised cookies would create another customer: refused.
	stale := livechat.WithCredentials(s.Visitor, oldToken, []string{"__lc_cid=" + s.Visitor.ID, "__lc_cst=forged"})
	if _, err := f.client.RefreshVisitor(context.Background(), stale); hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Errorf("forged cookies: err = %v", err)
	}
	// The renewed token works.
	s.Visitor = v
	if sent, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"}); err != nil || sent.Visitor != nil {
		t.Errorf("send after refresh: %v, %v", sent, err)
	}
}

func TestAgentTokenRefused(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	o := f.sim.Options()
	c, err := livechat.NewClient(livechat.Config{
		APIURL: f.sim.APIURL(), AccountsURL: f.sim.AccountsURL(), OrganizationID: o.OrganizationID, ClientID: o.ClientID,
		AgentToken: "dGVzdC1hY2NvdW50Ondyb25n", // test-account:wrong
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Close(context.Background(), s)
	if hitl.ErrorCode(err) != hitl.CodeProvider || f.sim.Calls("deactivate_chat") != 1 {
		t.Fatalf("err = %v, calls %q", err, f.sim.CallLog())
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  livechat.Config
		want string
	}{
		{"empty", livechat.Config{}, "organization id is required"},
		{"token not base64", livechat.Config{OrganizationID: "o", ClientID: "c", AgentToken: "acc:pat"}, "agent token"},
		{"token without colon", livechat.Config{OrganizationID: "o", ClientID: "c", AgentToken: "YWNjb3VudA=="}, "agent token"},
		{"bad URL", livechat.Config{OrganizationID: "o", ClientID: "c", AgentToken: "YTpi", APIURL: "ftp://x"}, "API URL"},
		{"negative group", livechat.Config{OrganizationID: "o", ClientID: "c", AgentToken: "YTpi", GroupID: -1}, "group id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := livechat.NewClient(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := livechat.NewClient(livechat.Config{OrganizationID: "o", ClientID: "c", AgentToken: "YTpi"}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

// assertNoSecrets checks that logs carry no token, cookie or PAT.
func assertNoSecrets(t *testing.T, logs string, sim *livechattest.Server, visitors ...hitl.Visitor) {
	t.Helper()
	secrets := []string{sim.Options().PAT, sim.AgentToken()}
	for _, v := range visitors {
		token, cookies := credentials(t, v)
		secrets = append(secrets, token)
		for _, c := range cookies {
			// __lc_cid is the customer id; __lc_cst is the secret part.
			if value, ok := strings.CutPrefix(c, "__lc_cst="); ok {
				secrets = append(secrets, value)
			}
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs contain a secret: %s", logs)
		}
	}
}

// credentials returns the customer token and cookies v holds.
func credentials(t *testing.T, v hitl.Visitor) (token string, cookies []string) {
	t.Helper()
	token, cookies, err := livechat.Credentials(v)
	if err != nil {
		t.Fatalf("credentials of visitor %s: %v", v.ID, err)
	}
	return token, cookies
}

// token returns the customer token v holds.
func token(t *testing.T, v hitl.Visitor) string {
	t.Helper()
	tok, _ := credentials(t, v)
	return tok
}

// TestCredentialsLayout: the credentials are LiveChat's JSON, the layout
// the stores also give sessions saved before credentials were opaque;
// bytes of another layout are refused without being quoted.
func TestCredentialsLayout(t *testing.T) {
	legacy := hitl.Visitor{ID: "c1", Credentials: hitl.Credentials(`{"token":"dal:tok","cookies":["__lc_cid=c1","__lc_cst=s"]}`)}
	if tok, cookies, err := livechat.Credentials(legacy); err != nil || tok != "dal:tok" || !slices.Equal(cookies, []string{"__lc_cid=c1", "__lc_cst=s"}) {
		t.Errorf("legacy layout read as %q, %q, %v", tok, cookies, err)
	}
	round := livechat.WithCredentials(hitl.Visitor{ID: "c1"}, "dal:tok", []string{"__lc_cid=c1", "__lc_cst=s"})
	if string(round.Credentials) != string(legacy.Credentials) {
		t.Errorf("credentials encoded as %s, want %s", []byte(round.Credentials), []byte(legacy.Credentials))
	}
	f := newFixture(t)
	s := hitl.Session{ID: "ses_1", Provider: hitl.LiveChat, ProviderConversationID: "CHAT1",
		Visitor: hitl.Visitor{ID: "c1", Credentials: hitl.Credentials("\x00not-livechat-secret")}}
	_, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "hi"})
	if hitl.ErrorCode(err) != hitl.CodeInternal || strings.Contains(err.Error(), "secret") || len(f.sim.CallLog()) != 0 {
		t.Errorf("send with foreign credentials: %v, calls %q", err, f.sim.CallLog())
	}
}
