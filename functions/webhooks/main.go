// Command webhooks is the Lambda function that takes provider webhooks
// (POST /webhooks/{provider}): verify, de-duplicate, record, deliver. It
// reads the ingress secret only: webhook secrets and keys, the callback
// signing secret and the Botpress webhook.
package main

import (
	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/lambdarun"
)

func main() { lambdarun.Run(app.LoadWebhooks, apigw.New) }
