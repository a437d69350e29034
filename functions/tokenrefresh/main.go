// Command tokenrefresh is the scheduled Lambda function that renews
// provider credentials before they expire, so request paths never mint
// tokens: LiveChat customer tokens (8 h) within their last hour, the Zoho
// access token (1 h) within its last 15 minutes. It also keeps the
// platforms' webhooks registered and derives the ingress secret.
package main

import (
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/lambdarun"
)

func main() { lambdarun.Run(app.LoadTokenRefresh, lambdarun.Scheduled) }
