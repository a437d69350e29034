package reliability

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// conversation is a handoff whose provider-side events were tapped, ready
// to be delivered to the bridge.
type conversation struct {
	provider, sessionID, convID string
	// events are the deliveries of each event, in the order they happened:
	// one per delivery the provider makes (retries included).
	events [][]simcore.Delivery
	// texts are the agent's messages, in order.
	texts []string
}

// openConversations starts n handoffs, alternating LiveChat and Zoho, and
// taps, for each, an agent joining and then perSession-1 messages, each
// event delivered copies times as the provider's retries do. It returns
// them, the messages the bot must receive by session, and how many events
// were tapped (each to reach the bot once).
func openConversations(t testing.TB, e *apptest.Env, n, perSession, copies int) ([]*conversation, map[string][]string, int) {
	t.Helper()
	e.LiveChat.SetDeliveries(copies)
	e.Zoho.SetDeliveries(copies)
	defer e.LiveChat.SetDeliveries(1)
	defer e.Zoho.SetDeliveries(1)
	var out []*conversation
	for i := range n {
		c := &conversation{provider: "livechat"}
		if i%2 == 1 {
			c.provider = "zoho"
		}
		c.sessionID, c.convID = e.HandoffTo(t, c.provider)
		out = append(out, c)
	}
	tp := tapAll(t, e)
	for _, c := range out {
		for j := range perSession {
			text := fmt.Sprintf("%s message %d", c.sessionID, j)
			var err error
			switch {
			case j == 0 && c.provider == "livechat":
				_, err = e.LiveChat.AgentJoins(c.convID, livechattest.Ann)
			case j == 0:
				_, err = e.Zoho.OperatorAccepts(c.convID, zohotest.Operator{ID: "op-1", Name: "Olga", Email: "olga@example.com"})
			case c.provider == "livechat":
				_, err = e.LiveChat.AgentSays(c.convID, text)
			default:
				_, err = e.Zoho.OperatorReplies(c.convID, text)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := tp.Take()
			if len(got) != copies {
				t.Fatalf("%s delivered an event %d times, want %d", c.provider, len(got), copies)
			}
			c.events = append(c.events, got)
			if j > 0 {
				c.texts = append(c.texts, text)
			}
		}
	}
	untap(e)
	want, events := map[string][]string{}, 0
	for _, c := range out {
		want[c.sessionID] = c.texts
		events += len(c.events)
	}
	return out, want, events
}

// TestRetriedWebhooksReachTheBotOnce delivers every provider event three
// times at once, as LiveChat and SalesIQ retry: the bot receives each event
// exactly once, in order per session.
func TestRetriedWebhooksReachTheBotOnce(t *testing.T) {
	sessions := size(10, 20)
	forEachStore(t, func(t *testing.T, storeName string, st *countedStore) {
		perSession := size(30, 50)
		if storeName == "dynamo" && !long {
			perSession = 15 // moto_server takes one request at a time
		}
		e := apptest.New(t, st)
		convs, want, n := openConversations(t, e, sessions, perSession, 3)

		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for _, c := range convs {
			wg.Go(func() {
				for _, copies := range c.events { // one event after the other
					var each sync.WaitGroup
					for _, d := range copies { // its deliveries at once
						each.Go(func() {
							status, _ := post(webhookURL(e, c.provider), d.Body, d.Header)
							mu.Lock()
							statuses[status]++
							mu.Unlock()
						})
					}
					each.Wait()
				}
			})
		}
		wg.Wait()

		got := tallyEvents(e.Bot.Events())
		disorder := outOfOrder(got.sessions, want)
		ok := got.distinct == n && got.twice == 0 && disorder == 0 && statuses[http.StatusOK] == 3*n
		record(t, "duplicates", storeName, ok, "%d of %d · %d · %d (%d deliveries, %d answered 200)",
			got.distinct, n, got.twice, disorder, 3*n, statuses[http.StatusOK])
	})
}
