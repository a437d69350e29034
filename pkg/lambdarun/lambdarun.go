// Package lambdarun is the entry point every Lambda function of
// functions/ shares: wire the function once, at cold start, then serve
// its events.
package lambdarun

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Run wires the function with load, with Lambda's logger, and serves its
// events with the handler made of what load returned. A function that
// cannot be wired exits with the error, which Lambda reports as an init
// failure.
func Run[T, H any](load func(context.Context, *slog.Logger) (T, error), handler func(T) H) {
	v, err := load(context.Background(), lambdacontext.NewLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(handler(v))
}

// Scheduled is the handler of a function that EventBridge runs on a
// schedule: each event runs work.
func Scheduled(work func(context.Context) error) func(context.Context, events.EventBridgeEvent) error {
	return func(ctx context.Context, _ events.EventBridgeEvent) error { return work(ctx) }
}
