// Command redelivery is the scheduled Lambda function that retries bot
// callbacks the bot did not accept, takes over outboxes whose deliverer
// died (in order per session), and ends Botpress sessions idle past their
// timeout.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	a, err := app.LoadAWS(context.Background(), lambdacontext.NewLogger())
	if err != nil {
		return err
	}
	lambda.Start(handler(a))
	return nil
}

func handler(a *app.App) func(context.Context, events.EventBridgeEvent) error {
	return func(ctx context.Context, _ events.EventBridgeEvent) error {
		return a.Redeliver(ctx)
	}
}
