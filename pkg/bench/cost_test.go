//go:build bench

package bench

import (
	"fmt"
	"math"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

// Public prices, us-east-1, on-demand: those of issue 6, from the AWS
// pricing pages (HTTP API: first 300 million requests a month; Lambda:
// arm64; DynamoDB: on-demand, standard table class; Secrets Manager: API
// calls), recorded on pricesDate. Check them again before relying on them.
const (
	pricesDate             = "2026-11-21"
	priceHTTPAPIRequest    = 1.00 / 1e6       // $ per request
	priceLambdaRequest     = 0.20 / 1e6       // $ per invocation
	priceLambdaGBSecond    = 0.0000133334     // $ per GB-s, arm64
	priceDynamoWriteUnit   = 0.625 / 1e6      // $ per write request unit
	priceDynamoReadUnit    = 0.125 / 1e6      // $ per read request unit
	priceSecretsManagerAPI = 0.05 / 10000     // $ per API call
	lambdaMemoryGB         = 128.0 / 1024     // the template's MemorySize
	lambdaFullCPUMB        = 1769.0           // memory at which Lambda gives one full vCPU
	billingIncrement       = time.Millisecond // Lambda rounds each duration up to 1 ms
)

// messageCost is the cost of one message and what it is made of.
type messageCost struct {
	httpAPI, lambdaRequests, lambdaDuration, dynamoWrites, dynamoReads, secretsManager float64
}

func (c messageCost) total() float64 {
	return c.httpAPI + c.lambdaRequests + c.lambdaDuration + c.dynamoWrites + c.dynamoReads + c.secretsManager
}

// costInputs are the measured quantities per message.
type costInputs struct {
	invocations    float64       // Lambda invocations the message causes
	billed         time.Duration // billed duration per invocation
	wru, rru       float64       // DynamoDB request units (index writes included)
	secretsManager float64       // Secrets Manager calls
}

func cost(in costInputs) messageCost {
	return messageCost{
		httpAPI:        priceHTTPAPIRequest,
		lambdaRequests: in.invocations * priceLambdaRequest,
		lambdaDuration: in.invocations * in.billed.Seconds() * lambdaMemoryGB * priceLambdaGBSecond,
		dynamoWrites:   in.wru * priceDynamoWriteUnit,
		dynamoReads:    in.rru * priceDynamoReadUnit,
		secretsManager: in.secretsManager * priceSecretsManagerAPI,
	}
}

// billedAt128MB estimates an invocation's billed duration at 128 MB from a
// local measurement: the CPU-bound part runs 1769/128 times slower there
// (Lambda gives CPU in proportion to memory, a full vCPU at 1,769 MB),
// the waiting part as measured; rounded up to the billing increment.
func billedAt128MB(wall, cpu time.Duration) time.Duration {
	slow := lambdaFullCPUMB / 128
	d := wall + time.Duration(float64(cpu)*(slow-1))
	return time.Duration(math.Ceil(float64(d)/float64(billingIncrement))) * billingIncrement
}

// breakdown describes a cost per million messages.
func (c messageCost) breakdown() string {
	m := func(v float64) string { return fmt.Sprintf("$%.3f", v*1e6) }
	return fmt.Sprintf("HTTP API %s + Lambda requests %s + GB-s %s + DynamoDB writes %s + reads %s + Secrets Manager %s",
		m(c.httpAPI), m(c.lambdaRequests), m(c.lambdaDuration), m(c.dynamoWrites), m(c.dynamoReads), m(c.secretsManager))
}

// cost estimates the DynamoDB request units of agent and bot messages
// through a bridge whose store is metered, then prices a million of each
// with the durations and Secrets Manager calls of the long runs.
func (b *bench) cost(p provider) error {
	if b.webhookBilled == 0 || b.botBilled == 0 {
		return fmt.Errorf("needs the durations of the webhooks and actions long runs, which did not complete")
	}
	var meter *awstest.Meter
	e, err := b.newEnv(b.aws, p, func(l *lane, table string) (dynamo.API, error) {
		var err error
		meter, err = awstest.NewMeter(b.ctx, l.db, l.direct, table)
		return meter, err
	})
	if err != nil {
		return err
	}
	c := p.handoff(b.t, e.Env)
	units := func(n int, next func(i int) request) ([]awstest.Capacity, map[string]int, error) {
		out := make([]awstest.Capacity, n)
		_, skipped := meter.Snapshot()
		for i := range n {
			meter.ResetMax()
			before, _ := meter.Snapshot()
			if err := send(b.ctx, loopbackClient(1), e.Server.URL, next(i)); err != nil {
				return nil, nil, err
			}
			after, _ := meter.Snapshot()
			out[i] = after.Minus(before)
		}
		_, skippedAfter := meter.Snapshot()
		for op, v := range skippedAfter {
			if skippedAfter[op] = v - skipped[op]; skippedAfter[op] == 0 {
				delete(skippedAfter, op)
			}
		}
		return out, skippedAfter, nil
	}
	agent, skippedAgent, err := units(b.size.capacityMessages, func(i int) request { return p.agentMessage(e.Env, c, i) })
	if err != nil {
		return err
	}
	bot, skippedBot, err := units(20, func(i int) request { return botMessage(c.sessionID, i) })
	if err != nil {
		return err
	}
	if len(skippedAgent)+len(skippedBot) > 0 {
		return fmt.Errorf("the messages made DynamoDB calls the meter does not price: %v %v", skippedAgent, skippedBot)
	}
	mean := func(u []awstest.Capacity) awstest.Capacity {
		var m awstest.Capacity
		for _, c := range u {
			m.WRU += c.WRU / float64(len(u))
			m.IndexWRU += c.IndexWRU / float64(len(u))
			m.RRU += c.RRU / float64(len(u))
		}
		return m
	}
	// The long runs give each conversation about 100 agent messages: price
	// the mean of a 100-message conversation.
	conv100, conv20, later, perBot := mean(agent[:100]), mean(agent[:20]), mean(agent[100:]), mean(bot)
	agentCost := cost(costInputs{invocations: 1, billed: b.webhookBilled, wru: conv100.WRU + conv100.IndexWRU, rru: conv100.RRU, secretsManager: b.agentSecrets})
	botCost := cost(costInputs{invocations: 1, billed: b.botBilled, wru: perBot.WRU + perBot.IndexWRU, rru: perBot.RRU, secretsManager: b.botSecrets})
	wru := func(c awstest.Capacity) string {
		return fmt.Sprintf("%.2f WRU (item %.2f + index %.2f)", c.WRU+c.IndexWRU, c.WRU, c.IndexWRU)
	}
	kb := func(i int) string { return fmt.Sprintf("%.2f KB", float64(agent[i].MaxItem)/1024) }

	section := forProvider(sectionCost, p.name)
	b.r.add(figure{Section: section, Name: "agent messages", Value: agentCost.total() * 1e6, Unit: "$", Text: fmt.Sprintf("$%.2f", agentCost.total()*1e6)}.
		atMost(maxCostPerMillion, "$%.2f").note("%s", agentCost.breakdown()))
	b.r.add(figure{Section: section, Name: "DynamoDB units per agent message", Value: conv100.WRU + conv100.IndexWRU, Text: fmt.Sprintf("%.2f WRU, %.2f RRU", conv100.WRU+conv100.IndexWRU, conv100.RRU)}.
		note("mean over a 100-message conversation: %s; over a 20-message one: %s; each message after the 100th: %s. The largest item written (the delivery item, which every Record and Ack rewrites) is %s at the 1st message, %s at the 20th, %s at the 100th. Estimated from the sizes of the items written (moto reports no real capacity)",
			wru(conv100), wru(conv20), wru(later), kb(0), kb(19), kb(99)))
	b.r.add(figure{Section: section, Name: "billed duration of a warm webhooks invocation", Value: b.webhookBilled.Seconds(), Unit: "s", Text: fmt.Sprintf("%.1f ms", float64(b.webhookBilled.Microseconds())/1000)}.
		note("measured wall time (moto and the bot on loopback) plus the CPU time × (1769/128 − 1): Lambda gives 128 MB a 128/1769 share of a vCPU"))
	b.r.add(figure{Section: section, Name: "bot messages", Value: botCost.total() * 1e6, Unit: "$", Text: fmt.Sprintf("$%.2f", botCost.total()*1e6)}.
		note("%s; %.2f RRU per message; the provider's own charges not included", botCost.breakdown(), perBot.RRU))
	return nil
}
