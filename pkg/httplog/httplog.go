// Package httplog logs the requests the bridge serves: one line each, with
// the route pattern (never the path, which can carry a secret such as
// Botpress's path token), the status and the duration; no bodies, forms or
// cookies.
package httplog

import (
	"log/slog"
	"net/http"
	"time"
)

// Handler serves next and logs each request to log. The route is known
// only when next is (or ends in) a ServeMux that matched a pattern.
func Handler(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.Info("request", "route", r.Pattern, "status", sw.status, "ms", time.Since(start).Milliseconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}
