// Command admin is the Lambda function behind the operator page, /admin
// and /admin/…: status, open sessions, dead letters, setup and the
// platforms' actions. It is the one function that links the page's
// template engine.
package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin/page"
	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/lambdarun"
)

func main() {
	lambdarun.Run(func(ctx context.Context, log *slog.Logger) (http.Handler, error) {
		return app.LoadAdmin(ctx, log, page.Render)
	}, apigw.New)
}
