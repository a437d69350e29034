// Package httpapi is hitl-bridge's HTTP surface: the native bot API, the
// provider webhook ingress, and the error format they share. Handlers are
// thin: decode, call the Bridge, map errors through one table.
package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

var statusOf = map[hitl.Code]int{
	hitl.CodeInvalid:         http.StatusBadRequest,
	hitl.CodeUnauthenticated: http.StatusUnauthorized,
	hitl.CodeNotFound:        http.StatusNotFound,
	hitl.CodeConflict:        http.StatusConflict,
	hitl.CodeTooLarge:        http.StatusRequestEntityTooLarge,
	hitl.CodeRateLimited:     http.StatusTooManyRequests,
	hitl.CodeProvider:        http.StatusBadGateway,
	hitl.CodeUnavailable:     http.StatusServiceUnavailable,
	hitl.CodeNoAgent:         http.StatusConflict,
	hitl.CodeInternal:        http.StatusInternalServerError,
}

// WriteError answers with the JSON error format. The cause goes to the log,
// never to the caller.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := hitl.ErrorCode(err)
	status := statusOf[code]
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	log.Log(r.Context(), level, "request failed", "method", r.Method, "route", r.Pattern, "status", status, "err", err)
	if d := hitl.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	}
	WriteJSON(w, status, map[string]any{"error": map[string]string{"code": string(code), "message": hitl.ErrorMessage(err)}})
}

// WriteJSON answers status with v as JSON, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads at most MaxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, hitl.Errorf(hitl.CodeTooLarge, "request body is larger than %d bytes", MaxBody)
	} else if err != nil {
		return nil, hitl.Wrap(hitl.CodeInvalid, err, "request body could not be read")
	}
	if !utf8.Valid(b) {
		// encoding/json would silently replace the bad bytes.
		return nil, hitl.Errorf(hitl.CodeInvalid, "request body must be valid UTF-8")
	}
	return b, nil
}

// Decode reads a JSON request body into v.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return hitl.Errorf(hitl.CodeInvalid, "request body must be a JSON object")
	}
	return hitl.DecodeJSON(b, v)
}

// Keyring holds digests of accepted keys; comparing digests in constant
// time reveals neither a key nor its length.
type Keyring [][sha256.Size]byte

// NewKeyring holds the non-empty keys.
func NewKeyring(keys ...string) Keyring {
	var k Keyring
	for _, key := range keys {
		if key != "" {
			k = append(k, sha256.Sum256([]byte(key)))
		}
	}
	return k
}

// Has reports whether presented is one of the keys.
func (k Keyring) Has(presented string) bool {
	d := sha256.Sum256([]byte(presented))
	ok := 0
	for _, want := range k {
		ok |= subtle.ConstantTimeCompare(d[:], want[:])
	}
	return ok == 1 && presented != ""
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) string {
	const prefix = "bearer "
	h := r.Header.Get("Authorization")
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return strings.TrimSpace(h[len(prefix):])
	}
	return ""
}

// NotFound answers unknown routes in the JSON error format.
func NotFound(log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, hitl.Errorf(hitl.CodeNotFound, "no such route"))
	}
}
