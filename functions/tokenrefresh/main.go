// Command tokenrefresh is the scheduled Lambda function that renews
// provider credentials before they expire, so request paths never mint
// tokens: LiveChat customer tokens (8 h) are renewed within their last hour.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

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

// refreshHorizon renews tokens that expire within the next hour; the
// schedule runs every 5 minutes, so each token gets many chances.
const refreshHorizon = time.Hour

func handler(a *app.App) func(context.Context, events.EventBridgeEvent) error {
	return func(ctx context.Context, _ events.EventBridgeEvent) error {
		n, err := a.Bridge.RefreshVisitors(ctx, refreshHorizon)
		a.Log.Info("visitor tokens refreshed", "count", n)
		return err
	}
}
