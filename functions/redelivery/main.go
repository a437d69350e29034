// Command redelivery is the scheduled Lambda function that retries bot
// callbacks the bot did not accept, takes over outboxes whose deliverer
// died (in order per session), and ends Botpress sessions idle past their
// timeout.
package main

import (
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/lambdarun"
)

func main() { lambdarun.Run(app.LoadRedelivery, lambdarun.Scheduled) }
