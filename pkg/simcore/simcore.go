// Package simcore is what the platform simulators (livechattest,
// zohotest) share, and what tests share with them: the record of the calls
// a simulator answered, faults queued to answer the next ones, the
// settable clock, the bearer tokens a simulator issued, where webhooks go,
// the uploaded files a simulator serves, and a log buffer. What the calls do, and which documented
// platform behaviour they follow, stays in each simulator.
package simcore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Clock is a settable clock: a base clock, the wall clock when none is
// given, moved forward by Advance. The zero Clock is the wall clock.
type Clock struct {
	mu     sync.Mutex
	base   func() time.Time
	offset time.Duration
}

// NewClock returns a Clock over base; nil is the wall clock.
func NewClock(base func() time.Time) *Clock { return &Clock{base: base} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base == nil {
		return time.Now().Add(c.offset)
	}
	return c.base().Add(c.offset)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Logs collects log output written from many goroutines, for checks of
// what was logged (and that no secret ever is).
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger is a JSON logger into l at debug level.
func (l *Logs) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Core is a simulator's shared part; F is its injected error answer. Its
// methods are safe for concurrent use, and may be called while the
// simulator holds its own lock (Core never calls back into it).
type Core[F any] struct {
	Clock

	srv        *httptest.Server
	mu         sync.Mutex
	calls      map[string]int
	log        []string
	faults     map[string][]F
	webhookURL string
	deliveries int
	files      map[string]file // by id
}

type file struct {
	contentType string
	body        []byte
}

// Start serves mux, with the uploaded files at GET /files/{id}/{name}, on
// a new httptest server. now is the simulator's base clock (nil: the wall
// clock); webhookURL is where webhooks go until SetWebhookURL.
func (c *Core[F]) Start(mux *http.ServeMux, now func() time.Time, webhookURL string) {
	c.Clock = Clock{base: now}
	c.calls, c.faults, c.files = map[string]int{}, map[string][]F{}, map[string]file{}
	c.webhookURL, c.deliveries = webhookURL, 1
	mux.HandleFunc("GET /files/{id}/{name}", c.handleFile)
	c.srv = httptest.NewServer(mux)
}

// Close stops the server.
func (c *Core[F]) Close() { c.srv.Close() }

// URL is the server's base URL.
func (c *Core[F]) URL() string { return c.srv.URL }

// FailNext makes the next n calls named name answer f. Each simulator
// documents its call names.
func (c *Core[F]) FailNext(name string, n int, f F) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		c.faults[name] = append(c.faults[name], f)
	}
}

// Calls reports how many times the call named name was made, faults
// included.
func (c *Core[F]) Calls(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

// CallLog lists the calls in order, as the simulator records them.
func (c *Core[F]) CallLog() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// Record counts a call of name, logs it as entry, and returns the fault
// to answer it with, if one is queued.
func (c *Core[F]) Record(entry, name string) (F, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[name]++
	c.log = append(c.log, entry)
	var none F
	q := c.faults[name]
	if len(q) == 0 {
		return none, false
	}
	c.faults[name] = q[1:]
	return q[0], true
}

// SetWebhookURL sets where webhooks go.
func (c *Core[F]) SetWebhookURL(u string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.webhookURL = u
}

// SetDeliveries makes every webhook be delivered n times (at least once),
// as the platforms' retries can; each simulator documents how.
func (c *Core[F]) SetDeliveries(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deliveries = max(n, 1)
}

// Webhook returns where webhooks go and how many times each is delivered.
func (c *Core[F]) Webhook() (url string, deliveries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.webhookURL, c.deliveries
}

// StoreFile keeps an uploaded file and returns the URL it is served at.
func (c *Core[F]) StoreFile(name, contentType string, body []byte) string {
	id := RandomHex(8)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[id] = file{contentType: contentType, body: body}
	return c.srv.URL + "/files/" + id + "/" + url.PathEscape(strings.ReplaceAll(name, "/", "_"))
}

// File returns an uploaded file by the URL StoreFile gave.
func (c *Core[F]) File(u string) (body []byte, contentType string, ok bool) {
	id, _, _ := strings.Cut(strings.TrimPrefix(u, c.srv.URL+"/files/"), "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.files[id]
	return f.body, f.contentType, ok
}

// RandomHex is n random bytes in hex: ids and tokens as a platform makes
// them up.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Core[F]) handleFile(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	f, ok := c.files[r.PathValue("id")]
	c.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Write(f.body)
}
