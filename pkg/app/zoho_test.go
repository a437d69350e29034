package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

func TestZohoHandoffEndToEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		z := e.Zoho
		z.SetDeliveries(3) // SalesIQ retries: attempt 1..3 of every webhook
		_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"})
		_, other := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Grace Hopper", "email": "grace@example.com"})
		status, s := e.Do(t, "POST", "/v1/sessions", map[string]any{
			"userId": u["userId"], "provider": "zoho", "title": "Order #1042", "description": "late",
			"messageHistory": []map[string]any{{"source": map[string]string{"type": "user"}, "type": "text", "payload": map[string]string{"text": "where is my parcel"}}},
		}, "Idempotency-Key", "z-1")
		if status != http.StatusCreated || s["provider"] != "zoho" || s["status"] != "waiting" {
			t.Fatalf("start: %d %v", status, s)
		}
		if status, _ := e.Do(t, "POST", "/v1/sessions", map[string]any{"userId": other["userId"], "provider": "zoho"}); status != http.StatusCreated {
			t.Fatalf("second user's start: %d", status)
		}
		sessionID, convID := s["sessionId"].(string), s["providerConversationId"].(string)
		conv, ok := z.Conversation(convID)
		if !ok || conv.UserID != u["userId"] || conv.VisitorName != "Ada Lovelace" || conv.VisitorEmail != "ada@example.com" {
			t.Fatalf("the conversation is not Ada's own: %+v", conv)
		}
		for _, want := range []string{"Order #1042", "late", "where is my parcel"} {
			if !strings.Contains(conv.Question, want) {
				t.Errorf("question lacks %q: %q", want, conv.Question)
			}
		}
		if n := len(z.Conversations()); n != 2 {
			t.Fatalf("%d conversations for two users", n)
		}

		files := newFileServer(t)
		msgs := "/v1/sessions/" + sessionID + "/messages"
		for _, m := range []map[string]any{
			{"type": "text", "payload": map[string]any{"text": "hello operator"}},
			{"type": "image", "payload": map[string]any{"imageUrl": files.URL + "/photo.png"}},
			{"type": "dropdown", "payload": map[string]any{"text": "Pick", "options": []map[string]string{{"label": "Refund", "value": "r"}}}},
		} {
			if status, out := e.Do(t, "POST", msgs, m); status != http.StatusAccepted {
				t.Fatalf("send %s: %d %v", m["type"], status, out)
			}
		}
		conv, _ = z.Conversation(convID)
		var texts []string
		for _, m := range conv.Messages {
			texts = append(texts, m.Text+"|"+m.FileName)
		}
		joined := strings.Join(texts, "\n")
		if !strings.Contains(joined, "hello operator") || !strings.Contains(joined, "photo.png") || !strings.Contains(joined, "• Refund") {
			t.Fatalf("SalesIQ messages: %s", joined)
		}

		op := zohotest.Operator{ID: "op-1", Name: "Olga", Email: "olga@example.com"}
		simcore.Delivered(t)(z.OperatorAccepts(convID, op))
		simcore.Delivered(t)(z.OperatorReplies(convID, "Hi Ada"))
		simcore.Delivered(t)(z.OperatorSendsFile(convID, "label.pdf", "application/pdf", []byte("%PDF"), ""))
		simcore.Delivered(t)(z.TransferAccepted(convID, zohotest.Operator{ID: "op-2", Name: "Omar", Email: "omar@example.com"}))
		simcore.Delivered(t)(z.Completes(convID))
		var got []hitl.Event
		for _, ev := range e.Bot.Events() {
			if ev.SessionID == sessionID {
				got = append(got, ev)
			}
		}
		want := []string{"hitl.assigned", "hitl.message", "hitl.message", "hitl.transferred", "hitl.stopped"}
		if strings.Join(eventTypes(got), " ") != strings.Join(want, " ") {
			t.Fatalf("bot received %v, want %v (each once, though delivered three times)", eventTypes(got), want)
		}
		if got[0].Agent.Name != "Olga" || got[1].Message.Text != "Hi Ada" || got[1].Agent.Name != "Olga" ||
			got[2].Message.Type != hitl.TypeFile || got[3].Agent.Name != "Omar" || got[4].Reason != hitl.ReasonAgentClosed {
			t.Fatalf("events %+v", got)
		}
	})
}

func TestZohoMissedAndBotStop(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		missedID, missedConv := e.HandoffTo(t, "zoho")
		simcore.Delivered(t)(e.Zoho.Missed(missedConv))
		stoppedID, stoppedConv := e.HandoffTo(t, "zoho")
		for range 2 {
			if status, out := e.Do(t, "POST", "/v1/sessions/"+stoppedID+"/stop", nil); status != http.StatusOK {
				t.Fatalf("stop: %d %v", status, out)
			}
		}
		if !e.Zoho.Closed(stoppedConv) || e.Zoho.Calls("close") != 1 {
			t.Fatalf("closed=%v after %d close calls", e.Zoho.Closed(stoppedConv), e.Zoho.Calls("close"))
		}
		reasons := map[string]string{}
		for _, ev := range e.Bot.Events() {
			if ev.Type == hitl.EventStopped {
				reasons[ev.SessionID] += ev.Reason
			}
		}
		if reasons[missedID] != hitl.ReasonMissed || reasons[stoppedID] != hitl.ReasonBotStopped {
			t.Fatalf("stop reasons %v", reasons)
		}
	})
}

func TestZohoWebhooksMustBeSignedByTheConfiguredKey(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	_, convID := e.HandoffTo(t, "zoho")
	body, err := e.Zoho.Envelope("conversation.completed", convID, 1)
	if err != nil {
		t.Fatal(err)
	}
	good := e.Zoho.Sign(body)
	tampered := strings.Replace(string(body), convID, convID+"0", 1)
	forger := zohotest.New(zohotest.Options{})
	defer forger.Close()
	for name, d := range map[string]struct {
		body, sig string
	}{
		"unsigned":             {string(body), ""},
		"garbage signature":    {string(body), "bm90IGEgc2lnbmF0dXJl"},
		"tampered body":        {tampered, good},
		"another key":          {string(body), forger.Sign(body)},
		"signature of another": {string(body), e.Zoho.Sign([]byte(tampered))},
	} {
		status, err := e.Zoho.Post([]byte(d.body), d.sig)
		if err != nil || status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, err %v; want 401", name, status, err)
		}
	}
	if n := len(e.Bot.Events()); n != 0 {
		t.Fatalf("forged deliveries produced %d events", n)
	}
	if status, _ := e.Zoho.Post(body, good); status != http.StatusOK || len(e.Bot.Events()) != 1 {
		t.Fatalf("the genuine delivery: %d, %d events", status, len(e.Bot.Events()))
	}
}

func TestZohoTokenExpiresMidConversation(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	sessionID, _ := e.HandoffTo(t, "zoho")
	// Zoho revokes the token some minutes after it was minted (past the
	// one-refresh-a-minute floor the bridge keeps across containers).
	e.Clock.Advance(2 * time.Minute)
	e.Zoho.ExpireTokens()
	before := e.Zoho.TokenCalls()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if status, out := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/messages", map[string]any{"type": "text", "payload": map[string]any{"text": "still there?"}}); status != http.StatusAccepted {
				t.Errorf("send: %d %v", status, out)
			}
		})
	}
	wg.Wait()
	if n := e.Zoho.TokenCalls() - before; n != 1 {
		t.Fatalf("%d token refreshes for 50 concurrent invalid-token failures, want 1", n)
	}
}

func TestZohoConnectFlow(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	admin := []string{"Authorization", "Bearer " + apptest.AdminKey}
	if status, _ := e.Do(t, "GET", "/oauth/zoho/start", nil); status != http.StatusUnauthorized {
		t.Fatalf("start with the bot key: %d", status)
	}
	status, out := e.Do(t, "GET", "/oauth/zoho/start", nil, admin...)
	if status != http.StatusOK {
		t.Fatalf("start: %d %v", status, out)
	}
	authURL, _ := url.Parse(out["authorizationUrl"].(string))
	q := authURL.Query()
	if !strings.HasSuffix(authURL.Path, "/oauth/v2/org/auth") || q.Get("access_type") != "offline" ||
		!strings.Contains(q.Get("scope"), "SalesIQ.Conversations.ALL") || q.Get("redirect_uri") != e.Server.URL+"/oauth/zoho/callback" {
		t.Fatalf("authorization URL %s", authURL)
	}
	state := q.Get("state")
	callback := func(code, state, accounts string) (int, string) {
		t.Helper()
		v := url.Values{"code": {code}, "state": {state}, "location": {"us"}, "accounts-server": {accounts}}
		return zohoCallback(t, e, v)
	}
	accounts := e.Zoho.AccountsURL()
	code := e.Zoho.AuthorizationCode(q.Get("redirect_uri"))
	if status, page := callback(code, state+"x", accounts); status != http.StatusBadRequest || !strings.Contains(page, "not connected") {
		t.Fatalf("forged state: %d %s", status, page)
	}
	if status, _ := callback(code, state, "https://accounts.evil.example"); status != http.StatusBadRequest {
		t.Fatalf("foreign accounts server: %d", status)
	}
	if tok, _ := e.ZohoTokens.Load(t.Context()); tok.RefreshToken != "" {
		t.Fatal("a refused callback stored a token")
	}
	// A state is used once: the refused attempt above consumed it.
	start := func() string {
		_, out := e.Do(t, "GET", "/oauth/zoho/start", nil, admin...)
		u, _ := url.Parse(out["authorizationUrl"].(string))
		return u.Query().Get("state")
	}
	state = start()
	if status, page := callback("1000.bad", state, accounts); status != http.StatusBadRequest || !strings.Contains(page, "did not accept") || strings.Contains(page, "invalid_code") {
		t.Fatalf("a code Zoho refuses: %d %s", status, page)
	}
	state = start()
	if status, page := callback(code, state, accounts); status != http.StatusOK || !strings.Contains(page, "is connected") {
		t.Fatalf("callback: %d %s", status, page)
	}
	if tok, _ := e.ZohoTokens.Load(t.Context()); tok.RefreshToken == "" || tok.AccessToken == "" {
		t.Fatal("the connected token was not stored")
	}
	if status, _ := callback(code, state, accounts); status != http.StatusBadRequest {
		t.Fatalf("a replayed state: %d", status)
	}
	if strings.Contains(e.Logs.String(), code) {
		t.Fatal("the authorization code was logged")
	}
}
