package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// templateActions reads, per function of template.yaml, the DynamoDB
// actions its policies allow.
func templateActions(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var fn string
	resource := regexp.MustCompile(`^  (\w+):\s*$`)
	action := regexp.MustCompile(`dynamodb:(\w+)`)
	for _, line := range strings.Split(string(raw), "\n") {
		if m := resource.FindStringSubmatch(line); m != nil {
			fn = m[1]
			continue
		}
		if strings.Contains(line, "DynamoDBCrudPolicy") {
			t.Fatalf("%s uses DynamoDBCrudPolicy: list the actions it calls", fn)
		}
		for _, m := range action.FindAllStringSubmatch(line, -1) {
			out[fn] = append(out[fn], m[1])
		}
	}
	return out
}

// Each function's policy allows the DynamoDB calls its code path makes:
// the work of each function runs against DynamoDB on moto_server, and the
// operations it calls are compared with template.yaml. (A transaction is
// authorised by its parts, PutItem, UpdateItem or DeleteItem, which the
// counter does not see: the template grants DeleteItem to the functions
// whose acknowledgements drop a closed session's delivery item.)
func TestTemplateGrantsEachFunctionTheDynamoDBCallsItMakes(t *testing.T) {
	allowed := templateActions(t)
	st, calls := apptest.CountedDynamo(t)
	// With a public URL the scheduled run also keeps the webhooks set up.
	e := apptest.New(t, st, func(c *config.Config) { c.PublicURL = "https://bridge.example.com" })
	check := func(fn string, work func(), want ...string) {
		t.Helper()
		calls.Reset()
		work()
		t.Logf("%s: %v", fn, calls.Calls())
		for _, op := range want { // the workload reached these paths
			if calls.Count(op) == 0 {
				t.Errorf("%s's workload made no %s call", fn, op)
			}
		}
		for op := range calls.Calls() {
			if op != "TransactWriteItems" && !slices.Contains(allowed[fn], op) {
				t.Errorf("%s calls dynamodb:%s, which template.yaml does not allow it (allowed: %v)", fn, op, allowed[fn])
			}
		}
	}
	admin := []string{"Authorization", "Bearer " + apptest.AdminKey}
	var sessionID, chatID, zohoSession, zohoHeld, zohoConv string
	check("ActionsFunction", func() {
		sessionID, chatID = e.Handoff(t)
		zohoSession, _ = e.HandoffTo(t, "zoho")
		zohoHeld, zohoConv = e.HandoffTo(t, "zoho")
		e.Do(t, "POST", "/v1/sessions/"+sessionID+"/messages", map[string]any{"type": "text", "payload": map[string]any{"text": "hi"}})
		e.Do(t, "GET", "/v1/sessions/"+sessionID, nil)
		e.Do(t, "POST", "/v1/sessions/"+zohoSession+"/stop", map[string]any{"reason": "resolved"})
		e.Do(t, "GET", "/v1/admin/dead-letters", nil, admin...)
		e.Do(t, "POST", "/v1/admin/dead-letters/"+sessionID+"/replay", nil, admin...)
		e.Do(t, "GET", "/oauth/zoho/start", nil, admin...)
	}, "PutItem", "GetItem", "UpdateItem", "TransactWriteItems", "Query")
	check("WebhooksFunction", func() {
		simcore.Delivered(t)(e.LiveChat.AgentJoins(chatID, livechattest.Ann))
		simcore.Delivered(t)(e.LiveChat.AgentSays(chatID, "Hi"))
		e.Bot.SetDown(true)
		simcore.Delivered(t)(e.LiveChat.AgentSays(chatID, "Still there?"))
		// A SalesIQ reply right after the open, to a webhooks function of its
		// own (another process than the opener's, as in AWS), reads the held
		// deliveries once; one of a conversation not yet recorded is held.
		webhooks, err := app.NewWebhooks(e.IngressConfig(t), e.Options)
		if err != nil {
			t.Fatal(err)
		}
		front := httptest.NewServer(webhooks)
		t.Cleanup(front.Close)
		e.Zoho.SetWebhookURL(front.URL + "/webhooks/zoho")
		simcore.Delivered(t)(e.Zoho.OperatorAccepts(zohoConv, zohotest.Operator{ID: "op-1", Name: "Omar"}))
		simcore.Delivered(t)(e.Zoho.OperatorReplies(zohoConv, "Hello"))
		e.Zoho.SetWebhookURL(e.Server.URL + "/webhooks/zoho")
		early := hitl.ProviderEvent{Provider: hitl.Zoho, ConversationID: "4000000000000000001", Key: "m1",
			Type: hitl.EventMessage, MaybeOpening: true, Message: &hitl.Message{Type: hitl.TypeText, Text: "early"}}
		if err := e.App.Bridge.HandleProviderEvent(context.Background(), early); err != nil {
			t.Fatal(err)
		}
		// The agent ends a chat (its close is delivered, its delivery state
		// goes), and the user rates it afterwards.
		simcore.Delivered(t)(e.LiveChat.AgentCloses(chatID))
		simcore.Delivered(t)(e.LiveChat.CustomerRates(chatID, 1, "thanks"))
	}, "GetItem", "UpdateItem", "Query", "PutItem", "BatchGetItem")
	check("RedeliveryFunction", func() {
		e.Clock.Advance(time.Hour)
		if err := e.App.Redeliver(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(26 * time.Hour) // past the retry window: dead-lettered
		if err := e.App.Redeliver(context.Background()); err != nil {
			t.Fatal(err)
		}
	}, "Query", "UpdateItem", "TransactWriteItems")
	e.Bot.SetDown(false)
	check("AdminFunction", func() {
		// The operator page: signed in, it shows the status, the open
		// sessions and the dead letters; its forms run the setup and a
		// replay.
		page := apptest.NewBrowser(t, e.Server.URL)
		if resp, _ := page.Post("/admin/login", url.Values{"key": {apptest.AdminKey}}, ""); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		_, html := page.Get("/admin")
		csrf := csrfField.FindStringSubmatch(html)
		if csrf == nil {
			t.Fatal("the operator page has no form")
		}
		for _, form := range []string{"/admin/setup", "/admin/dead-letters/" + sessionID + "/replay"} {
			if resp, _ := page.Post(form, url.Values{"csrf": {csrf[1]}}, ""); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("%s: %d", form, resp.StatusCode)
			}
		}
	}, "Query", "GetItem", "BatchGetItem", "TransactWriteItems")
	check("ActionsFunction", func() {
		if status, _ := e.Do(t, "GET", "/v1/admin/dead-letters", nil, admin...); status != http.StatusOK {
			t.Fatalf("dead letters: %d", status)
		}
		e.Do(t, "POST", "/v1/admin/dead-letters/"+zohoHeld+"/replay", nil, admin...)
	}, "Query", "BatchGetItem", "TransactWriteItems")
	check("TokenRefreshFunction", func() {
		e.LiveChat.Advance(27*time.Hour + 30*time.Minute)
		if err := e.App.RefreshCredentials(context.Background()); err != nil {
			t.Fatal(err)
		}
	}, "Query")
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
