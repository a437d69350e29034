package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// The Go benchmarks below need no build tag: `go test -bench` runs them,
// and benchstat compares runs:
//
//	go test -run '^$' -bench . -count 10 ./pkg/... > new.txt
//	benchstat old.txt new.txt

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

// webhookCase is one delivery for a provider's webhook parser.
type webhookCase struct {
	name   string
	parse  func(h http.Header, body []byte) ([]hitl.ProviderEvent, error)
	header http.Header
	body   []byte
	want   int  // events parsed
	fails  bool // verification refuses it
}

// webhookCases are the deliveries each provider's parser is measured on:
// a verified agent message, and a forged one.
func webhookCases(b *testing.B) []webhookCase {
	var sample events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(apptest.Event(b, "webhooks-livechat-incoming-message.json"), &sample); err != nil {
		b.Fatal(err)
	}
	lc := livechat.NewWebhooks(apptest.WebhookSecret, apptest.OrganizationID)
	lcParse := func(_ http.Header, body []byte) ([]hitl.ProviderEvent, error) { return lc.Parse(body) }

	// Zoho signs each delivery with RSA (SHA-256, PKCS #1 v1.5).
	sim := zohotest.New(zohotest.Options{})
	b.Cleanup(sim.Close)
	o := sim.Options()
	// The sample's event_time is fixed: the parser's clock is set to it.
	z, err := zoho.NewWebhooks(zoho.WebhookConfig{PublicKeys: []string{sim.PublicKeyPEM()}, AppID: o.AppID, OrgID: o.OrgID,
		Now: func() time.Time { return time.UnixMilli(1763725982412) }})
	if err != nil {
		b.Fatal(err)
	}
	reply := fmt.Appendf(nil, `{"entity_type":"conversation","webhook":{"id":"1"},"org_id":%q,"event":"conversation.operator.replied",`+
		`"entity_id":"4000000012345","attempt":1,"version":"1","app_id":%q,"event_time":"1763725982412","entity":{"id":"4000000012345",`+
		`"message":{"sender":{"name":"Jane","id":"9000000001","type":"operator"},"msgid":"1763725982412","text":"Hi Ada, I'm Jane from support. I can help with the refund."}}}`,
		o.OrgID, o.AppID)
	signed := http.Header{zoho.SignatureHeader: {sim.Sign(reply)}}
	forged := http.Header{zoho.SignatureHeader: {sim.Sign([]byte("another body"))}}

	return []webhookCase{
		{name: "livechat/message", parse: lcParse, body: []byte(sample.Body), want: 1},
		{name: "livechat/forged", parse: lcParse, body: []byte(strings.Replace(sample.Body, apptest.WebhookSecret, "forged-secret", 1)), fails: true},
		{name: "zoho/message", parse: z.Parse, header: signed, body: reply, want: 1},
		{name: "zoho/forged", parse: z.Parse, header: forged, body: reply, fails: true},
	}
}

// BenchmarkWebhooksParse measures verifying and parsing one delivery.
func BenchmarkWebhooksParse(b *testing.B) {
	for _, c := range webhookCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				events, err := c.parse(c.header, c.body)
				if (err != nil) != c.fails || len(events) != c.want {
					b.Fatalf("parse = %d events, %v", len(events), err)
				}
			}
		})
	}
}

// BenchmarkStore measures the store calls of the hot paths: Record and Ack
// (an agent message) and GetSession (a bot message), on the embedded store
// and on DynamoDB through moto_server (skipped without moto_server; moto
// is much slower than DynamoDB, so compare its figures only with
// themselves).
func BenchmarkStore(b *testing.B) {
	for _, name := range []string{"bolt", "dynamo"} {
		b.Run(name, func(b *testing.B) {
			newStore := apptest.Stores[name]
			b.Run("Record", func(b *testing.B) {
				st, s := openSession(b, newStore)
				i := 0
				for b.Loop() {
					i++
					owner := record(b, st, s, i)
					b.StopTimer()
					ack(b, st, s, owner)
					b.StartTimer()
				}
			})
			b.Run("Ack", func(b *testing.B) {
				st, s := openSession(b, newStore)
				i := 0
				for b.Loop() {
					i++
					b.StopTimer()
					owner := record(b, st, s, i)
					b.StartTimer()
					ack(b, st, s, owner)
				}
			})
			b.Run("GetSession", func(b *testing.B) {
				st, s := openSession(b, newStore)
				for b.Loop() {
					if _, err := st.GetSession(context.Background(), s.ID); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// openSession stores an open session, as StartSession leaves it.
func openSession(b *testing.B, newStore apptest.StoreFactory) (hitl.Store, hitl.Session) {
	ctx := context.Background()
	st := newStore(b)
	now := time.Now().UTC()
	s := hitl.Session{
		ID: hitl.NewID("ses"), UserID: hitl.NewID("usr"), Provider: hitl.LiveChat, Channel: hitl.ChannelNative,
		BotConversationID: "bc-1", Status: hitl.StatusOpening, CreatedAt: now, UpdatedAt: now,
	}
	if _, err := st.CreateSession(ctx, s, ""); err != nil {
		b.Fatal(err)
	}
	// LiveChat's credentials: a customer token and its identity cookies.
	creds := `{"token":"dal:` + strings.Repeat("t", 40) + `","cookies":["__lc_cid=` + strings.Repeat("c", 36) + `","__lc_cst=` + strings.Repeat("s", 60) + `"]}`
	visitor := hitl.Visitor{ID: "c5e4d3b2-a190-4f8e-b7d6-c5b4a3928170", Credentials: hitl.Credentials(creds), CredentialsExpireAt: now.Add(8 * time.Hour)}
	if err := st.Opened(ctx, s.ID, hitl.Opened{ConversationID: "CHAT" + hitl.NewID("c"), Visitor: visitor}, now); err != nil {
		b.Fatal(err)
	}
	s, err := st.GetSession(ctx, s.ID)
	if err != nil {
		b.Fatal(err)
	}
	return st, s
}

// record records agent message i and returns the lease owner it took.
func record(b *testing.B, st hitl.Store, s hitl.Session, i int) string {
	now := time.Now().UTC()
	owner := hitl.NewID("own")
	r, err := st.Record(context.Background(), hitl.Change{SessionID: s.ID, At: now, Event: hitl.Event{
		ID: hitl.EventID(s.Provider, s.ProviderConversationID, fmt.Sprint(i)), Type: hitl.EventMessage,
		SessionID: s.ID, BotConversationID: s.BotConversationID, Provider: s.Provider, OccurredAt: now,
		Agent:   &hitl.Agent{ID: "agent@example.com", Name: "Jane"},
		Message: &hitl.Message{Type: hitl.TypeText, Text: "Hi Ada, I'm Jane from support. I can help with the refund."},
		Channel: s.Channel, UserID: s.UserID,
	}}, owner, now.Add(hitl.DeliveryLease))
	if err != nil || !r.Leased {
		b.Fatalf("Record = %+v, %v", r, err)
	}
	return owner
}

// ack acknowledges the one pending event.
func ack(b *testing.B, st hitl.Store, s hitl.Session, owner string) {
	if more, err := st.Ack(context.Background(), s.ID, owner, 1, nil); err != nil || more {
		b.Fatalf("Ack = %v, %v", more, err)
	}
}
