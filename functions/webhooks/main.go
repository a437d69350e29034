// Command webhooks is the Lambda function that takes provider webhooks
// (POST /webhooks/{provider}): verify, de-duplicate, record, deliver. It
// reads the ingress secret only: webhook secrets and keys, the callback
// signing secret and the Botpress webhook.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	a, err := app.LoadAWSIngress(context.Background(), lambdacontext.NewLogger())
	if err != nil {
		return err
	}
	lambda.Start(handler(a))
	return nil
}

func handler(a *app.App) apigw.Handler { return apigw.New(a.Webhooks) }
