// Command actions is the Lambda function behind the bot-facing routes: the
// native API (/v1/…, the JSON operator routes among them), the Botpress
// contract, the platforms' routes (Zoho's OAuth) and /healthz.
package main

import (
	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/lambdarun"
)

func main() { lambdarun.Run(app.LoadActions, apigw.New) }
