package reliability

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

// sendTimeout is the callback timeout while the bot hangs: short, so that
// two hours of sweeps cost milliseconds each. The outbox treats a timed-out
// callback as a refused one, whatever the timeout.
const sendTimeout = 25 * time.Millisecond

// webhookRun is what the providers saw while delivering.
type webhookRun struct {
	mu       sync.Mutex
	non200   int
	slowest  time.Duration
	received int
}

// deliverAll delivers every event of convs to the bridge once: each
// conversation's events in order, the conversations at once.
func deliverAll(e *apptest.Env, convs []*conversation) *webhookRun {
	run := &webhookRun{}
	var wg sync.WaitGroup
	for _, c := range convs {
		wg.Go(func() {
			for _, copies := range c.events {
				for _, d := range copies {
					start := time.Now()
					status, _ := post(webhookURL(e, c.provider), d.Body, d.Header)
					took := time.Since(start)
					run.mu.Lock()
					run.received++
					run.slowest = max(run.slowest, took)
					if status != http.StatusOK {
						run.non200++
					}
					run.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return run
}

// TestNothingIsLostWhileTheBotIsDown makes the bot refuse (503) or hang
// past the callback timeout for two hours of the clock while agents write:
// every webhook is still answered 200 at once, and after the bot recovers
// every event reaches it once, in order per session.
func TestNothingIsLostWhileTheBotIsDown(t *testing.T) {
	sessions, perSession := size(4, 10), size(8, 30)
	for _, mode := range []struct {
		key      string
		down     func(b *apptest.Bot, down bool)
		describe string
	}{
		{"outage/503", (*apptest.Bot).SetDown, "503"},
		{"outage/timeout", (*apptest.Bot).SetStalled, "hangs"},
	} {
		t.Run(mode.describe, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, storeName string, st *countedStore) {
				e := apptest.New(t, st)
				e.App.Dispatcher.SendTimeout = sendTimeout
				convs, want, n := openConversations(t, e, sessions, perSession, 1)

				mode.down(e.Bot, true)
				run := deliverAll(e, convs)
				for range 24 { // two hours of sweeps, five minutes apart
					e.Clock.Advance(5 * time.Minute)
					sweepAll(t, e)
				}
				during := len(e.Bot.Events())
				attempts := e.Bot.Attempts()

				// Back to the default timeout: a callback slower than the
				// short one would be accepted by the bot and sent again.
				e.App.Dispatcher.SendTimeout = 0
				mode.down(e.Bot, false)
				drain(t, e, n)
				got := tallyEvents(e.Bot.Events())
				disorder := outOfOrder(got.sessions, want)
				record(t, mode.key, storeName, during == 0 && got.distinct == n && got.twice == 0 && disorder == 0,
					"%d of %d · %d · %d · %d (%d callback attempts while down, %d accepted)",
					got.distinct, n, n-got.distinct, got.twice, disorder, attempts, during)
				record(t, "outage/webhook", storeName, run.non200 == 0 && run.slowest < 5*time.Second,
					"%d of %d · %s (bot %s)", run.non200, run.received, run.slowest.Round(time.Millisecond), mode.describe)
			})
		})
	}
}

// TestWebhooksAnswerInTimeWhileTheBotHangs is the one test that waits
// for the real callback timeout: with the default settings, a webhook is
// answered within Zoho's 5 s delivery timeout while the bot hangs, so the
// provider never retries because of the bot.
func TestWebhooksAnswerInTimeWhileTheBotHangs(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	_, chatID := e.Handoff(t)
	e.Bot.SetStalled(true)
	start := time.Now()
	status, err := e.LiveChat.AgentJoins(chatID, livechattest.Ann)
	took := time.Since(start)
	e.Bot.SetStalled(false)
	if err != nil {
		t.Fatal(err)
	}
	record(t, "outage/webhook", "bolt", status == http.StatusOK && took < 5*time.Second,
		"%d of 1 · %s (bot hangs; default %s callback timeout)", btoi(status != http.StatusOK), took.Round(time.Millisecond), delivery.DefaultSendTimeout)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestDeadLettersAreReplayedByTheOperator keeps the bot down past the
// retry window: every event is dead-lettered, listed by the operator
// route, and replayed once the bot is back, each once and in order.
func TestDeadLettersAreReplayedByTheOperator(t *testing.T) {
	sessions, perSession := size(3, 6), size(6, 20)
	forEachStore(t, func(t *testing.T, storeName string, st *countedStore) {
		e := apptest.New(t, st)
		convs, want, n := openConversations(t, e, sessions, perSession, 1)
		e.Bot.SetDown(true)
		deliverAll(e, convs)
		for range 26 { // hourly sweeps past the 25 h window
			e.Clock.Advance(time.Hour)
			sweepAll(t, e)
		}
		admin := []string{"Authorization", "Bearer " + apptest.AdminKey}
		status, out := e.Do(t, "GET", "/v1/admin/dead-letters", nil, admin...)
		dead, _ := out["deadLetters"].([]any)
		if status != http.StatusOK {
			t.Fatalf("dead letters: %d %v", status, out)
		}
		e.Bot.SetDown(false)
		replayed := 0
		for _, c := range convs {
			status, out := e.Do(t, "POST", "/v1/admin/dead-letters/"+c.sessionID+"/replay", nil, admin...)
			if status != http.StatusOK {
				t.Fatalf("replay %s: %d %v", c.sessionID, status, out)
			}
			replayed += int(out["replayed"].(float64))
		}
		sweepAll(t, e)
		_, out = e.Do(t, "GET", "/v1/admin/dead-letters", nil, admin...)
		left, _ := out["deadLetters"].([]any)
		got := tallyEvents(e.Bot.Events())
		disorder := outOfOrder(got.sessions, want)
		record(t, "outage/deadletter", storeName,
			len(dead) == n && replayed == n && got.distinct == n && got.twice == 0 && disorder == 0 && len(left) == 0,
			"%d of %d · %d of %d · %d · %d (%d out of order, %d dead letters left)",
			len(dead), n, replayed, n, n-got.distinct, got.twice, disorder, len(left))
	})
}

// killed is the outbox of a function killed right after the store write:
// it never delivers.
type killed struct{}

func (killed) Flush(context.Context, string, string, []hitl.Event) {}

// TestAKilledDeliveryIsSweptLater persists each session's first event as a
// function does and then dies before delivering it, holding the delivery
// lease. Later events of the session queue behind it; once the lease has
// expired the scheduled sweep delivers all of them, each once, in order.
func TestAKilledDeliveryIsSweptLater(t *testing.T) {
	sessions, perSession := size(4, 20), size(4, 10)
	forEachStore(t, func(t *testing.T, storeName string, st *countedStore) {
		e := apptest.New(t, st)
		convs, want, n := openConversations(t, e, sessions, perSession, 1)

		dying := &hitl.Bridge{Store: e.Store, Providers: e.App.Bridge.Providers, DefaultProvider: e.App.Bridge.DefaultProvider,
			Outbox: killed{}, Log: e.App.Log, Now: e.Clock.Now}
		zw, err := zoho.NewWebhooks(zoho.WebhookConfig{PublicKeys: []string{e.Zoho.PublicKeyPEM()},
			AppID: e.Zoho.Options().AppID, OrgID: e.Zoho.Options().OrgID})
		if err != nil {
			t.Fatal(err)
		}
		parsers := map[string]integration.WebhookParser{
			hitl.LiveChat: integration.BodyParser(livechat.NewWebhooks(apptest.WebhookSecret, apptest.OrganizationID).Parse),
			hitl.Zoho:     zw,
		}
		for _, c := range convs {
			d := c.events[0][0]
			events, err := parsers[c.provider].Parse(d.Header, d.Body)
			if err != nil || len(events) != 1 {
				t.Fatalf("parse %s delivery: %v, %d events", c.provider, err, len(events))
			}
			if err := dying.HandleProviderEvent(t.Context(), events[0]); err != nil {
				t.Fatal(err)
			}
			c.events = c.events[1:] // the rest arrives through the live function
		}
		run := deliverAll(e, convs)
		sweepAll(t, e) // the lease has not expired: nothing to take over yet
		before := len(e.Bot.Events())

		e.Clock.Advance(hitl.DeliveryLease + time.Second)
		if err := e.App.Redeliver(t.Context()); err != nil {
			t.Fatal(err)
		}
		sweepAll(t, e)
		got := tallyEvents(e.Bot.Events())
		disorder := outOfOrder(got.sessions, want)
		record(t, "crash/outbox", storeName,
			before == 0 && run.non200 == 0 && got.distinct == n && got.twice == 0 && disorder == 0,
			"%d of %d · %d · %d (%d delivered before the lease expired, %d out of order)",
			got.distinct, n, n-got.distinct, got.twice, before, disorder)
	})
}
