//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// provider is what the table needs to measure one provider's paths. Adding
// a provider is adding one of these to providers: open a
// session against its simulator, make an agent message's webhook delivery
// (signed as the provider signs it), and name the settings its functions
// need.
type provider struct {
	name string
	// handoff opens a session on e, through the bridge.
	handoff func(t testing.TB, e *apptest.Env) conversation
	// agentMessage is the webhook delivery of the agent's text message
	// number n of c, on e (whose simulator may sign it): n makes its event
	// id unique.
	agentMessage func(e *apptest.Env, c conversation, n int) request
	// settings are the environment variables the functions need for this
	// provider on e (its simulator's URLs, ids).
	settings func(e *apptest.Env) map[string]string
	// callLog lists the calls its simulator on e received, by action;
	// tokenCalls names the actions that mint or renew a token.
	callLog    func(e *apptest.Env) []string
	tokenCalls []string
	// documents are the documents the functions keep in secrets of their
	// own (a platform's token), as the platform's setup leaves them on e,
	// by the setting that names the secret: the harness stores each in
	// moto's Secrets Manager.
	documents func(ctx context.Context, e *apptest.Env) (map[string]any, error)
	// agentNote, if any, explains the provider's agent-message DynamoDB
	// calls.
	agentNote string
}

// secret keeps, of a config secret, what the functions need for this
// provider alone: its block (a block for a provider that is not
// configured is an error).
func (p provider) secret(s config.Secret) config.Secret {
	s.Blocks = map[string]json.RawMessage{p.name: s.Blocks[p.name]}
	return s
}

// calls counts the calls its simulator on e received, by action.
func (p provider) calls(e *apptest.Env) map[string]int {
	n := map[string]int{}
	for _, c := range p.callLog(e) {
		n[c]++
	}
	return n
}

// conversation is a session and its provider conversation.
type conversation struct {
	sessionID string
	chatID    string
	threadID  string
}

// providers are the providers the table measures, by hitl name.
func providers(t testing.TB) []provider {
	return []provider{liveChat(t), salesIQ()}
}

// liveChat makes agent messages from the sample webhook that `sam local
// invoke` uses: its secret and organization are apptest's.
func liveChat(t testing.TB) provider {
	var sample events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(apptest.Event(t, "webhooks-livechat-incoming-message.json"), &sample); err != nil {
		t.Fatal(err)
	}
	return provider{
		name: hitl.LiveChat,
		handoff: func(t testing.TB, e *apptest.Env) conversation {
			sessionID, chatID := e.Handoff(t)
			chat, _ := e.LiveChat.Chat(chatID)
			return conversation{sessionID: sessionID, chatID: chatID, threadID: chat.ThreadID}
		},
		agentMessage: func(_ *apptest.Env, c conversation, n int) request {
			body := strings.NewReplacer(
				"THREAD_DEMO_3", c.threadID+"_"+strconv.Itoa(n),
				"THREAD_DEMO", c.threadID,
				"CHAT_DEMO", c.chatID,
			).Replace(sample.Body)
			return request{
				method: "POST", path: sample.RawPath, body: []byte(body), want: 200,
				header: map[string]string{"Content-Type": "application/json"},
			}
		},
		settings: func(e *apptest.Env) map[string]string {
			lc := e.Config.Platforms[hitl.LiveChat].(*livechat.Settings)
			return map[string]string{
				"LIVECHAT_ORGANIZATION_ID": lc.OrganizationID,
				"LIVECHAT_CLIENT_ID":       lc.ClientID,
				"LIVECHAT_REDIRECT_URI":    lc.RedirectURI,
				"LIVECHAT_GROUP_ID":        strconv.Itoa(lc.GroupID),
				"LIVECHAT_API_URL":         lc.APIURL,
				"LIVECHAT_ACCOUNTS_URL":    lc.AccountsURL,
			}
		},
		callLog:    func(e *apptest.Env) []string { return e.LiveChat.CallLog() },
		tokenCalls: []string{"accounts/token"},
	}
}

// salesIQ measures Zoho SalesIQ on apptest's simulator: each session is
// picked up by an operator, and agent messages are
// conversation.operator.replied deliveries signed with the simulator's key
// (https://www.zoho.com/salesiq/help/developer-section/webhooks.html).
func salesIQ() provider {
	operator := zohotest.Operator{ID: "9000000001", Name: "Jane", Email: "jane@example.com"}
	return provider{
		name: hitl.Zoho,
		handoff: func(t testing.TB, e *apptest.Env) conversation {
			sessionID, convID := e.HandoffTo(t, hitl.Zoho)
			if status, err := e.Zoho.OperatorAccepts(convID, operator); err != nil || status != 200 {
				t.Fatalf("operator picks up %s: %d, %v", convID, status, err)
			}
			return conversation{sessionID: sessionID, chatID: convID}
		},
		agentMessage: func(e *apptest.Env, c conversation, n int) request {
			body, err := salesIQReply(e, c.chatID, operator, n)
			if err != nil {
				panic(err) // a conversation of the harness's own: a bug of the harness
			}
			return request{
				method: "POST", path: "/webhooks/zoho", body: body, want: 200,
				header: map[string]string{"Content-Type": "application/json", zoho.SignatureHeader: e.Zoho.Sign(body)},
			}
		},
		settings: func(e *apptest.Env) map[string]string {
			z := e.Config.Platforms[hitl.Zoho].(*zoho.Settings)
			return map[string]string{
				"ZOHO_REGION":        z.Region,
				"ZOHO_SCREEN_NAME":   z.ScreenName,
				"ZOHO_APP_ID":        z.AppID,
				"ZOHO_DEPARTMENT_ID": z.DepartmentID,
				"ZOHO_ORG_ID":        z.OrgID,
				"ZOHO_ACCOUNTS_URL":  z.AccountsURL,
				"ZOHO_SALESIQ_URL":   z.SalesIQURL,
			}
		},
		callLog:    func(e *apptest.Env) []string { return e.Zoho.CallLog() },
		tokenCalls: []string{"token"},
		agentNote: "a reply within 2 minutes of its conversation's opened_time may precede the opening (zoho mayPrecedeOpen): " +
			"a process reads the held events of each conversation id once (hitl Bridge.replayHeld), so the warm-up's first reply per conversation pays it",
		documents: func(ctx context.Context, e *apptest.Env) (map[string]any, error) {
			// The access token setup leaves: minted from the refresh
			// token, shared by e's bridge and the functions.
			z := e.Config.Platforms[hitl.Zoho].(*zoho.Settings)
			var sec zoho.ConfigSecret
			if err := json.Unmarshal(e.Config.Secret.Blocks[hitl.Zoho], &sec); err != nil {
				return nil, fmt.Errorf("read the zoho block: %w", err)
			}
			o, err := zoho.NewOAuth(zoho.OAuthConfig{Region: z.Region, AccountsURL: z.AccountsURL, ClientID: sec.ClientID, ClientSecret: sec.ClientSecret,
				RedirectURL: "https://bot.example.com/zoho/callback", HTTPClient: e.Net.Client()})
			if err != nil {
				return nil, err
			}
			tok, err := o.Refresh(ctx, sec.RefreshToken)
			if err != nil {
				return nil, fmt.Errorf("mint a zoho token: %w", err)
			}
			if err := e.ZohoTokens.Save(ctx, tok); err != nil {
				return nil, err
			}
			return map[string]any{"ZOHO_TOKEN_SECRET_ARN": tok}, nil
		},
	}
}

// salesIQReply is the conversation.operator.replied delivery of the
// operator's text message number n: the simulator's envelope of the
// conversation as it is, stamped now, with the message the webhook page
// documents (sender, msgid, text).
func salesIQReply(e *apptest.Env, convID string, op zohotest.Operator, n int) ([]byte, error) {
	raw, err := e.Zoho.Envelope("conversation.operator.replied", convID, 1)
	if err != nil {
		return nil, err
	}
	// Numbers stay as written: app_id is past float64's exact integers.
	var env map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&env); err != nil {
		return nil, err
	}
	entity, ok := env["entity"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the envelope of %s has no entity", convID)
	}
	now := time.Now()
	env["event_time"] = strconv.FormatInt(now.UnixMilli(), 10)
	entity["message"] = map[string]any{
		"sender": map[string]any{"name": op.Name, "id": op.ID, "type": "operator"},
		"msgid":  fmt.Sprintf("bench-%d-%d", now.UnixNano(), n),
		"text":   "Hi Ada, I'm Jane from support. I can help with the refund.",
		"type":   "text",
		"time":   strconv.FormatInt(now.UnixMilli(), 10),
	}
	return json.Marshal(env)
}

// botMessage is the bot's text message number n to a session.
func botMessage(sessionID string, n int) request {
	return request{
		method: "POST", path: "/v1/sessions/" + sessionID + "/messages", want: 202,
		body: fmt.Appendf(nil, `{"type":"text","payload":{"text":"Is anyone there? My order number is %d."}}`, n),
		header: map[string]string{
			"Authorization": "Bearer " + apptest.BotKey,
			"Content-Type":  "application/json",
		},
	}
}

// functionSettings is the environment of the functions on e: the
// template's variables, pointed at moto (through endpoint) and the
// simulators.
func functionSettings(e *apptest.Env, p provider, endpoint, table, secretARN string) map[string]string {
	s := map[string]string{
		"TABLE_NAME":              table,
		"CONFIG_SECRET_ARN":       secretARN,
		"DEFAULT_PROVIDER":        p.name,
		"BOT_CALLBACK_URL":        e.Config.BotCallbackURL,
		"HITL_ALLOW_PRIVATE_URLS": "true",
		"AWS_ENDPOINT_URL":        endpoint,
	}
	maps.Copy(s, p.settings(e))
	return s
}

// apiGatewayEvent is r as API Gateway (HTTP API, payload 2.0) hands it to
// a function.
func apiGatewayEvent(r request, n int) []byte {
	headers := map[string]string{
		"host":              "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
		"content-length":    strconv.Itoa(len(r.body)),
		"x-forwarded-proto": "https",
	}
	for k, v := range r.header {
		headers[strings.ToLower(k)] = v
	}
	now := time.Now()
	e := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: r.path, Headers: headers, Body: string(r.body),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "123456789012", APIID: "a1b2c3d4e5", Stage: "$default",
			RequestID: "bench-" + strconv.Itoa(n), Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.method, Path: r.path, Protocol: "HTTP/1.1", SourceIP: "35.244.0.10", UserAgent: "bench",
			},
		},
	}
	b, _ := json.Marshal(e)
	return b
}

// scheduledEvent is the EventBridge event of the scheduled functions.
func scheduledEvent(t testing.TB) []byte {
	return apptest.Event(t, "tokenrefresh-schedule.json")
}

// httpAnswer checks a function's answer to an API Gateway event.
func httpAnswer(want int) func([]byte) error {
	return func(b []byte) error {
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(b, &resp); err != nil {
			return fmt.Errorf("not an API Gateway answer: %.200s", b)
		}
		if resp.StatusCode != want {
			return fmt.Errorf("status %d, want %d: %.200s", resp.StatusCode, want, resp.Body)
		}
		return nil
	}
}
