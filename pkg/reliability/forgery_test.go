package reliability

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// forgery is one request that must change nothing.
type forgery struct {
	kind   string
	url    string
	body   []byte
	header http.Header
}

// outcome is what a batch of forgeries achieved.
type outcome struct {
	sent, accepted, writes, callbacks, providerCalls int
	wrong                                            []string // refusals of another status or shape, by kind
}

func (o outcome) String() string {
	return fmt.Sprintf("%d · %d · %d · %d of %d", o.accepted, o.writes, o.callbacks, o.providerCalls, o.sent)
}

func (o outcome) clean(min int) bool {
	return o.sent >= min && o.accepted == 0 && o.writes == 0 && o.callbacks == 0 && o.providerCalls == 0
}

// TestForgedRequestsChangeNothing sends forgeries of genuine webhook
// deliveries and bot calls, each a near miss of one that is accepted:
// none is accepted, none writes to the store, none reaches the bot or a
// provider. The genuine deliveries are accepted afterwards.
func TestForgedRequestsChangeNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeName string, st *countedStore) {
		e := apptest.NewBotpress(t, st)
		lcSession, chatID := e.HandoffTo(t, "livechat")
		zSession, convID := e.HandoffTo(t, "zoho")
		bpSession, bpUser := botpressSession(t, e)

		lcGenuine := tapped(t, e.Env, func() { liveChatActs(t, e.LiveChat, chatID) })
		zGenuine := tapped(t, e.Env, func() { zohoActs(t, e.Zoho, convID) })
		if len(lcGenuine) < 12 || len(zGenuine) < 10 {
			t.Fatalf("tapped %d LiveChat and %d SalesIQ deliveries", len(lcGenuine), len(zGenuine))
		}

		// Wrong Botpress tokens are answered as unknown routes.
		groups := []struct {
			key     string
			min     int
			forge   []forgery
			refusal int
		}{
			{"forgery/livechat", 200, forgeLiveChat(e, lcGenuine), http.StatusUnauthorized},
			{"forgery/zoho", 200, forgeZoho(t, e, zGenuine), http.StatusUnauthorized},
			{"forgery/botpress", 200, forgeBotpress(e, lcSession, bpSession, bpUser), http.StatusNotFound},
			{"forgery/native", 50, forgeNative(e, lcSession, zSession), http.StatusUnauthorized},
		}
		for _, g := range groups {
			o := sendForgeries(e, st, g.forge, g.refusal)
			record(t, g.key, storeName, o.clean(g.min) && len(o.wrong) == 0, "%s", o)
			for _, w := range o.wrong {
				t.Errorf("%s: %s (want %d and the JSON error object)", g.key, w, g.refusal)
			}
		}

		// The deliveries the forgeries imitated are genuine: accepted, they
		// reach the bot.
		before := len(e.Bot.Events())
		accepted := 0
		for _, d := range append(lcGenuine, zGenuine...) {
			url := webhookURL(e.Env, "livechat")
			if d.Header.Get("X-Siqsignature") != "" {
				url = webhookURL(e.Env, "zoho")
			}
			if status, answer := post(url, d.Body, d.Header); status == http.StatusOK {
				accepted++
			} else {
				t.Logf("genuine delivery refused: %d %s", status, answer)
			}
		}
		delivered := len(e.Bot.Events()) - before
		n := len(lcGenuine) + len(zGenuine)
		record(t, "forgery/control", storeName, accepted == n && delivered > 0,
			"%d of %d accepted, %d events at the bot", accepted, n, delivered)
	})
}

// sendForgeries sends every forgery and measures what changed.
func sendForgeries(e *apptest.BotpressEnv, st *countedStore, forged []forgery, refusal int) outcome {
	writes, callbacks, calls := st.Writes(), e.Bot.Attempts()+len(e.Webhook.Calls()), providerCalls(e.Env)
	o := outcome{sent: len(forged)}
	for _, f := range forged {
		status, answer := post(f.url, f.body, f.header)
		var shape struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		switch {
		case status >= 200 && status <= 299:
			o.accepted++
			o.wrong = append(o.wrong, fmt.Sprintf("%s: accepted with %d", f.kind, status))
		case status != refusal || json.Unmarshal(answer, &shape) != nil || shape.Error.Code == "":
			o.wrong = append(o.wrong, fmt.Sprintf("%s: answered %d %.120s", f.kind, status, answer))
		}
	}
	o.writes = st.Writes() - writes
	o.callbacks = e.Bot.Attempts() + len(e.Webhook.Calls()) - callbacks
	o.providerCalls = providerCalls(e.Env) - calls
	return o
}

// acted returns a check that fails t when a simulator's action errs; what
// the bridge answered to the delivery is for the tapped record to tell.
func acted(t testing.TB) func(int, error) {
	return func(_ int, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// liveChatActs plays an agent's side of a chat: every kind of delivery the
// bridge acts on, several messages among them.
func liveChatActs(t testing.TB, lc *livechattest.Server, chatID string) {
	t.Helper()
	do := acted(t)
	do(lc.AgentJoins(chatID, livechattest.Ann))
	for i := range 6 {
		do(lc.AgentSays(chatID, fmt.Sprintf("agent message %d", i)))
	}
	do(lc.AgentSendsFile(chatID, "label.pdf", "application/pdf", []byte("%PDF-1.4")))
	do(lc.TransferToQueue(chatID, 1))
	do(lc.AgentJoins(chatID, livechattest.Agent{ID: "bob@example.com", Name: "Bob"}))
	do(lc.AgentSays(chatID, "Bob here"))
	do(lc.AgentCloses(chatID))
}

// zohoActs plays an operator's side of a conversation.
func zohoActs(t testing.TB, z *zohotest.Server, convID string) {
	t.Helper()
	do := acted(t)
	do(z.OperatorAccepts(convID, zohotest.Operator{ID: "op-1", Name: "Olga", Email: "olga@example.com"}))
	for i := range 6 {
		do(z.OperatorReplies(convID, fmt.Sprintf("operator message %d", i)))
	}
	do(z.OperatorSendsFile(convID, "label.pdf", "application/pdf", []byte("%PDF-1.4"), "the label"))
	do(z.TransferAccepted(convID, zohotest.Operator{ID: "op-2", Name: "Omar", Email: "omar@example.com"}))
	do(z.OperatorReplies(convID, "Omar here"))
	do(z.Completes(convID))
}

// botpressSession creates a Botpress user and a pending session for it.
func botpressSession(t testing.TB, e *apptest.BotpressEnv) (sessionID, userID string) {
	t.Helper()
	var u, s struct{ ID string }
	for _, c := range []struct {
		action string
		body   string
		out    any
	}{
		{"createRemoteUser", `{"payload":{"name":"Ada Lovelace","email":"ada@example.com","role":"end-user"}}`, &u},
		{"createRemoteConversation", `{"payload":{"title":"Refund","description":"asks for a refund"}}`, &s},
	} {
		status, answer := post(e.BaseURL+"/"+c.action, []byte(c.body), nil)
		if status != http.StatusOK || json.Unmarshal(answer, c.out) != nil {
			t.Fatalf("%s: %d %s", c.action, status, answer)
		}
	}
	return s.ID, u.ID
}

// forgeLiveChat makes near misses of each genuine delivery: the secret
// missing, wrong, nearly right, of another type, in another place, or
// right but for another organization.
func forgeLiveChat(e *apptest.BotpressEnv, genuine []simcore.Delivery) []forgery {
	secret := apptest.WebhookSecret
	url := webhookURL(e.Env, "livechat")
	kinds := []struct {
		name   string
		change func(env map[string]any) (query string, header http.Header)
	}{
		{"no secret", func(env map[string]any) (string, http.Header) { delete(env, "secret_key"); return "", nil }},
		{"empty secret", set("secret_key", "")},
		{"wrong secret", set("secret_key", "forged-livechat-secret-0000")},
		{"secret and one more byte", set("secret_key", secret+"x")},
		{"secret less its last byte", set("secret_key", secret[:len(secret)-1])},
		{"secret upper-cased", set("secret_key", strings.ToUpper(secret))},
		{"secret in spaces", set("secret_key", " "+secret+" ")},
		{"secret and a NUL", set("secret_key", secret+"\x00")},
		{"secret with a look-alike letter", set("secret_key", strings.Replace(secret, "e", "е", 1))},
		{"secret base64-encoded", set("secret_key", base64.StdEncoding.EncodeToString([]byte(secret)))},
		{"secret as a number", set("secret_key", 12345)},
		{"secret in an array", set("secret_key", []string{secret})},
		{"secret in an object", set("secret_key", map[string]string{"value": secret})},
		{"secret null", set("secret_key", nil)},
		{"secret in a header", func(env map[string]any) (string, http.Header) {
			delete(env, "secret_key")
			return "", http.Header{"Authorization": {"Bearer " + secret}, "X-Livechat-Secret": {secret}}
		}},
		{"secret in the query", func(env map[string]any) (string, http.Header) {
			delete(env, "secret_key")
			return "?secret_key=" + secret, nil
		}},
		{"another organization", set("organization_id", "0a0b0c0d-1111-2222-3333-444455556666")},
		{"organization id of another type", set("organization_id", 5)},
	}
	e.AddSecret("forged-livechat-secret-0000", base64.StdEncoding.EncodeToString([]byte(secret)))
	var out []forgery
	for _, g := range genuine {
		for _, k := range kinds {
			var env map[string]any
			if err := json.Unmarshal(g.Body, &env); err != nil {
				panic(err)
			}
			query, header := k.change(env)
			body, _ := json.Marshal(env)
			out = append(out, forgery{kind: "livechat " + k.name, url: url + query, body: body, header: header})
		}
		// The last of duplicate keys wins in encoding/json: a wrong secret
		// after the right one.
		dup := bytes.Clone(bytes.TrimSuffix(bytes.TrimSpace(g.Body), []byte("}")))
		dup = append(dup, []byte(`,"secret_key":"forged-livechat-secret-0000"}`)...)
		out = append(out, forgery{kind: "livechat wrong secret after the right one", url: url, body: dup})
	}
	return out
}

func set(key string, value any) func(map[string]any) (string, http.Header) {
	return func(env map[string]any) (string, http.Header) {
		env[key] = value
		return "", nil
	}
}

// forgeZoho makes near misses of each genuine delivery: unsigned, badly
// signed, signed by another key, a valid signature over another body, a
// tampered body, or well signed but for another app or org.
func forgeZoho(t testing.TB, e *apptest.BotpressEnv, genuine []simcore.Delivery) []forgery {
	forger := zohotest.New(zohotest.Options{})
	t.Cleanup(forger.Close)
	url := webhookURL(e.Env, "zoho")
	sigOf := func(d simcore.Delivery) string { return d.Header.Get("X-Siqsignature") }
	resigned := func(change func(env map[string]any)) func(d, _ simcore.Delivery) ([]byte, string) {
		return func(d, _ simcore.Delivery) ([]byte, string) {
			var env map[string]any
			dec := json.NewDecoder(bytes.NewReader(d.Body))
			dec.UseNumber()
			if err := dec.Decode(&env); err != nil {
				panic(err)
			}
			change(env)
			body, _ := json.Marshal(env)
			return body, e.Zoho.Sign(body) // the right key: only the ids are wrong
		}
	}
	kinds := []struct {
		name  string
		forge func(d, other simcore.Delivery) ([]byte, string)
	}{
		{"unsigned", func(d, _ simcore.Delivery) ([]byte, string) { return d.Body, "" }},
		{"garbage signature", func(d, _ simcore.Delivery) ([]byte, string) {
			return d.Body, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 256))
		}},
		{"signature not base64", func(d, _ simcore.Delivery) ([]byte, string) { return d.Body, "!!not base64!!" }},
		{"signature truncated", func(d, _ simcore.Delivery) ([]byte, string) { s := sigOf(d); return d.Body, s[:len(s)-8] }},
		{"signature with a flipped bit", func(d, _ simcore.Delivery) ([]byte, string) {
			raw, _ := base64.StdEncoding.DecodeString(sigOf(d))
			raw[len(raw)/2] ^= 1
			return d.Body, base64.StdEncoding.EncodeToString(raw)
		}},
		{"signed by another key", func(d, _ simcore.Delivery) ([]byte, string) { return d.Body, forger.Sign(d.Body) }},
		{"valid signature over another body", func(d, other simcore.Delivery) ([]byte, string) { return d.Body, sigOf(other) }},
		{"text tampered", func(d, _ simcore.Delivery) ([]byte, string) {
			return bytes.Replace(d.Body, []byte(`"conversation`), []byte(`"Conversation`), 1), sigOf(d)
		}},
		{"conversation id tampered", func(d, _ simcore.Delivery) ([]byte, string) {
			return bytes.Replace(d.Body, []byte(`"entity_id":"`), []byte(`"entity_id":"9`), 1), sigOf(d)
		}},
		{"attempt tampered", func(d, _ simcore.Delivery) ([]byte, string) {
			return bytes.Replace(d.Body, []byte(`"attempt":1`), []byte(`"attempt":2`), 1), sigOf(d)
		}},
		{"whitespace added", func(d, _ simcore.Delivery) ([]byte, string) { return append(bytes.Clone(d.Body), ' '), sigOf(d) }},
		{"re-indented", func(d, _ simcore.Delivery) ([]byte, string) {
			var b bytes.Buffer
			_ = json.Indent(&b, d.Body, "", "  ") // other bytes, same meaning
			return b.Bytes(), sigOf(d)
		}},
		{"signature in another header", func(d, _ simcore.Delivery) ([]byte, string) { return d.Body, "moved:" + sigOf(d) }},
		{"signature with a scheme prefix", func(d, _ simcore.Delivery) ([]byte, string) { return d.Body, "sha256=" + sigOf(d) }},
		{"another org, well signed", resigned(func(env map[string]any) { env["org_id"] = "66666666" })},
		{"another app, well signed", resigned(func(env map[string]any) { env["app_id"] = "40526000000009999" })},
		{"no org, well signed", resigned(func(env map[string]any) { delete(env, "org_id") })},
		{"no app, well signed", resigned(func(env map[string]any) { delete(env, "app_id") })},
		{"org as another number, well signed", resigned(func(env map[string]any) { env["org_id"] = 55778118 })},
		{"org null, well signed", resigned(func(env map[string]any) { env["org_id"] = nil })},
	}
	var out []forgery
	for i, d := range genuine {
		other := genuine[(i+1)%len(genuine)]
		for _, k := range kinds {
			body, sig := k.forge(d, other)
			if bytes.Equal(body, d.Body) && sig == sigOf(d) {
				t.Fatalf("zoho %s: the forgery is the genuine delivery", k.name)
			}
			h := http.Header{}
			switch {
			case strings.HasPrefix(sig, "moved:"):
				h.Set("X-Signature", strings.TrimPrefix(sig, "moved:"))
			case sig != "":
				h.Set("X-Siqsignature", sig)
			}
			out = append(out, forgery{kind: "zoho " + k.name, url: url, body: body, header: h})
		}
	}
	return out
}

// forgeBotpress calls every Botpress route, with bodies that would act on
// real sessions, under path tokens that are nearly right.
func forgeBotpress(e *apptest.BotpressEnv, nativeSession, bpSession, bpUser string) []forgery {
	token := apptest.BotpressToken
	tokens := []struct{ name, token string }{
		{"wrong token", "forged-botpress-token-000000000000"},
		{"token and one more byte", token + "x"},
		{"token less its last byte", token[:len(token)-1]},
		{"token upper-cased", strings.ToUpper(token)},
		{"token with a look-alike letter", strings.Replace(token, "e", "е", 1)},
		{"token of another length", token + token},
		{"the bot API key as token", apptest.BotKey},
		{"the admin key as token", apptest.AdminKey},
		{"token with a space", token + "%20"},
		{"token and a NUL", token + "%00"},
		{"no token", ""},
		{"token in a header only", "header"},
		{"the provider name as token", "livechat"},
		{"the session id as token", bpSession},
		{"the LiveChat webhook secret as token", apptest.WebhookSecret},
	}
	bodies := map[string]string{
		"ping":                     `{}`,
		"createRemoteUser":         `{"payload":{"name":"Mallory","email":"mallory@example.com","role":"end-user"}}`,
		"createRemoteConversation": `{"payload":{"title":"forged","description":"forged"}}`,
		"botSendsMessage":          `{"remoteConversationId":"` + bpSession + `","remoteUserId":"` + bpUser + `","payload":{"type":"text","text":"forged"}}`,
		"closeRemoteTicket":        `{"payload":{"botpressConversationId":"` + nativeSession + `"}}`,
	}
	e.AddSecret("forged-botpress-token-000000000000")
	var out []forgery
	for action, body := range bodies {
		for _, provider := range []string{"", "/livechat", "/zoho"} {
			for _, tk := range tokens {
				h := http.Header{}
				tok := tk.token
				if tok == "header" {
					tok = "wrong-token"
					h.Set("Authorization", "Bearer "+token)
				}
				url := e.Server.URL + "/botpress/" + tok + provider + "/" + action
				out = append(out, forgery{kind: "botpress " + action + ": " + tk.name, url: url, body: []byte(body), header: h})
			}
		}
	}
	return out
}

// forgeNative calls the native and operator routes with wrong keys.
func forgeNative(e *apptest.BotpressEnv, lcSession, zSession string) []forgery {
	type call struct{ method, path, body string }
	calls := []call{
		{"POST", "/v1/users", `{"name":"Mallory"}`},
		{"POST", "/v1/sessions", `{"userId":"usr_x"}`},
		{"POST", "/v1/sessions/" + lcSession + "/messages", `{"type":"text","payload":{"text":"forged"}}`},
		{"POST", "/v1/sessions/" + zSession + "/messages", `{"type":"text","payload":{"text":"forged"}}`},
		{"POST", "/v1/sessions/" + lcSession + "/stop", `{}`},
		{"POST", "/v1/sessions/" + zSession + "/stop", `{}`},
		{"POST", "/v1/admin/dead-letters/" + lcSession + "/replay", `{}`},
	}
	auths := []struct{ name, header string }{
		{"no key", ""},
		{"wrong key", "Bearer forged-bot-key-000000000000"},
		{"key and one more byte", "Bearer " + apptest.BotKey + "x"},
		{"key less its last byte", "Bearer " + apptest.BotKey[:len(apptest.BotKey)-1]},
		{"key as Basic", "Basic " + base64.StdEncoding.EncodeToString([]byte(apptest.BotKey))},
		{"the Botpress token as key", "Bearer " + apptest.BotpressToken},
		{"the signing secret as key", "Bearer " + apptest.SigningKey},
		{"empty bearer", "Bearer "},
	}
	e.AddSecret("forged-bot-key-000000000000")
	var out []forgery
	for _, c := range calls {
		for _, a := range auths {
			h := http.Header{}
			if a.header != "" {
				h.Set("Authorization", a.header)
			}
			out = append(out, forgery{kind: "native " + c.path + ": " + a.name, url: e.Server.URL + c.path, body: []byte(c.body), header: h})
		}
	}
	// The bot's key is not the operator's.
	h := http.Header{"Authorization": {"Bearer " + apptest.BotKey}}
	out = append(out, forgery{kind: "admin replay with the bot key", url: e.Server.URL + "/v1/admin/dead-letters/" + lcSession + "/replay", body: []byte(`{}`), header: h})
	return out
}
