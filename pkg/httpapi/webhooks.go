package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httplog"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
)

// WebhookBudget bounds the work done for one delivery, inline bot delivery
// included, well inside Zoho's 5 s timeout: a slow bot never makes a
// provider retry; the outbox takes over.
const WebhookBudget = 3 * time.Second

// Webhooks returns the handler of POST /webhooks/{provider}, with each
// configured platform's parser by name.
func Webhooks(b *hitl.Bridge, parsers map[string]integration.WebhookParser, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	// SalesIQ checks a new webhook's URL with HEAD and wants 200
	// (https://www.zoho.com/salesiq/help/developer-section/create-webhook-v2.html).
	mux.HandleFunc("HEAD /webhooks/{provider}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := parsers[r.PathValue("provider")]; !ok {
			w.WriteHeader(http.StatusNotFound)
		}
	})
	mux.HandleFunc("POST /webhooks/{provider}", func(w http.ResponseWriter, r *http.Request) {
		provider := r.PathValue("provider")
		parser, ok := parsers[provider]
		if !ok {
			WriteError(w, r, log, hitl.Errorf(hitl.CodeNotFound, "no such webhook"))
			return
		}
		body, err := readBody(w, r)
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		events, err := parser.Parse(r.Header, body)
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), WebhookBudget)
		defer cancel()
		for _, e := range events {
			if err := b.HandleProviderEvent(ctx, e); err != nil {
				// A store failure: let the provider retry the delivery.
				WriteError(w, r, log, err)
				return
			}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"accepted": len(events)})
	})
	mux.Handle("/", NotFound(log))
	return httplog.Handler(log, mux)
}
