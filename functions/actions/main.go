// Command actions is the Lambda function behind the bot-facing routes: the
// native API (/v1/…), the operator routes and /healthz.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin/page"
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
	a, err := app.LoadAWS(context.Background(), lambdacontext.NewLogger())
	if err != nil {
		return err
	}
	lambda.Start(handler(a))
	return nil
}

// handler serves the actions routes, the operator page among them: this is
// the one function that links the page's template engine.
func handler(a *app.App) apigw.Handler {
	a.Admin.ServePage(page.Render)
	return apigw.New(a.Actions)
}
