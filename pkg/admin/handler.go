package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httplog"
)

// Config is what the operator routes need.
type Config struct {
	// Key is the config secret's adminApiKey; empty disables every route.
	Key     string
	Checker *Checker
	// Replay puts a session's dead letters back in its outbox and delivers
	// them (delivery.Dispatcher.Replay).
	Replay func(ctx context.Context, sessionID string) (int, error)
	// Setup runs the providers' webhook setup and returns its report.
	Setup func(ctx context.Context, publicURL string) (SetupReport, error)
	// PublicURL is the bridge's public base URL; empty means the base the
	// request came to (the actions function in AWS, where the template
	// cannot hand it the API's URL).
	PublicURL string
	Now       func() time.Time
	Log       *slog.Logger
}

// SetupReport is the outcome of a setup run, per provider.
type SetupReport struct {
	Providers map[string]any `json:"providers"`
	Checks    []health.Check `json:"checks"`
}

// Action is an operator action a provider offers: a button on /admin
// (POST /admin/{provider}/{name}) and the JSON route
// POST /v1/admin/{provider}/{name}.
type Action struct {
	Name  string // the path segment, e.g. "rotate-key"
	Label string // the button, e.g. "Rotate the SalesIQ webhook key"
	// Run does it; requestBase is the bridge's URL as the request reached
	// it (where an operator's browser comes back to).
	Run func(ctx context.Context, requestBase string) (ActionResult, error)
}

// ActionResult is what an action did.
type ActionResult struct {
	JSON     map[string]string // the JSON route's answer
	Message  string            // the page's message
	Redirect string            // when set, the page sends the browser there instead
}

// Handler serves /admin (the page) and the JSON routes
// GET /v1/admin/status, POST /v1/admin/setup and the providers' actions,
// POST /v1/admin/{provider}/{action}.
type Handler struct {
	cfg     Config
	mux     *http.ServeMux
	served  http.Handler // mux, logged
	key     [sha256.Size]byte
	sign    []byte                       // signs sessions and CSRF tokens
	actions map[string]map[string]Action // by provider, then name
	page    Page                         // nil: the page is not served
}

const (
	cookieName = "hitl_admin"
	sessionTTL = 8 * time.Hour
)

// NewHandler returns the operator routes.
func NewHandler(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	mac := hmac.New(sha256.New, []byte(cfg.Key))
	mac.Write([]byte("hitl-bridge admin session"))
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), key: sha256.Sum256([]byte(cfg.Key)), sign: mac.Sum(nil), actions: map[string]map[string]Action{}}
	for _, p := range cfg.Checker.Providers {
		for _, a := range p.Actions {
			if h.actions[p.Name] == nil {
				h.actions[p.Name] = map[string]Action{}
			}
			h.actions[p.Name][a.Name] = a
		}
	}
	h.mux.HandleFunc("GET /v1/admin/status", h.api(h.status))
	h.mux.HandleFunc("POST /v1/admin/setup", h.api(h.setup))
	h.mux.HandleFunc("POST /v1/admin/{provider}/{action}", h.api(h.runAction))
	h.mux.HandleFunc("GET /admin", h.showPage)
	h.mux.HandleFunc("POST /admin/login", h.login)
	h.mux.HandleFunc("POST /admin/logout", h.form(h.logout))
	h.mux.HandleFunc("POST /admin/setup", h.form(h.setupForm))
	h.mux.HandleFunc("POST /admin/dead-letters/{sessionId}/replay", h.form(h.replayForm))
	h.mux.HandleFunc("POST /admin/{provider}/{action}", h.form(h.actionForm))
	h.served = h.mux
	if cfg.Log != nil {
		h.served = httplog.Handler(cfg.Log, h.mux)
	}
	return h
}

// Routes reports whether the handler serves path.
func (h *Handler) Routes(path string) bool {
	switch path {
	case "/admin", "/v1/admin/status", "/v1/admin/setup":
		return true
	}
	if rest, ok := strings.CutPrefix(path, "/v1/admin/"); ok {
		provider, action, _ := strings.Cut(rest, "/")
		_, ok = h.actions[provider][action]
		return ok
	}
	return strings.HasPrefix(path, "/admin/")
}

// Mount serves the operator routes and hands every other request to next.
func (h *Handler) Mount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.Routes(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the operator routes; it logs the route, never the path's
// values, a form or a cookie.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.served.ServeHTTP(w, r)
}

// validKey compares presented with the admin key in constant time.
func (h *Handler) validKey(presented string) bool {
	d := sha256.Sum256([]byte(presented))
	return h.cfg.Key != "" && presented != "" && subtle.ConstantTimeCompare(d[:], h.key[:]) == 1
}

// base is the public base URL, or the one the request came to.
func (h *Handler) base(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return strings.TrimRight(h.cfg.PublicURL, "/")
	}
	return requestBase(r)
}

func requestBase(r *http.Request) string {
	scheme := "https"
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	} else if r.TLS == nil && loopback(r.Host) {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ---------------------------------------------------------------- JSON API

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code hitl.Code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": string(code), "message": message}})
}

// api guards a JSON route with "Authorization: Bearer <adminApiKey>".
func (h *Handler) api(next func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !h.validKey(strings.TrimSpace(token)) {
			writeError(w, http.StatusUnauthorized, hitl.CodeUnauthenticated, "a valid admin API key is required (Authorization: Bearer <adminApiKey>)")
			return
		}
		if err := next(w, r); err != nil {
			code := hitl.ErrorCode(err)
			status := http.StatusInternalServerError
			if code == hitl.CodeConflict {
				status = http.StatusConflict
			}
			if h.cfg.Log != nil {
				h.cfg.Log.Error("admin request failed", "route", r.Pattern, "err", err)
			}
			writeError(w, status, code, hitl.ErrorMessage(err))
		}
	}
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, h.cfg.Checker.Check(r.Context(), h.base(r)))
	return nil
}

func (h *Handler) setup(w http.ResponseWriter, r *http.Request) error {
	rep, err := h.cfg.Setup(r.Context(), h.base(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// action is the provider action the request names, if there is one.
func (h *Handler) action(r *http.Request) (Action, bool) {
	a, ok := h.actions[r.PathValue("provider")][r.PathValue("action")]
	return a, ok
}

func (h *Handler) runAction(w http.ResponseWriter, r *http.Request) error {
	a, ok := h.action(r)
	if !ok {
		writeError(w, http.StatusNotFound, hitl.CodeNotFound, "no such action")
		return nil
	}
	res, err := a.Run(r.Context(), requestBase(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res.JSON)
	return nil
}

// ---------------------------------------------------------------- page

// session returns the session cookie's value for an expiry.
func (h *Handler) session(expiry time.Time) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(expiry.Unix()))
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(h.mac("session", payload))
}

func (h *Handler) mac(purpose string, payload []byte) []byte {
	m := hmac.New(sha256.New, h.sign)
	m.Write([]byte(purpose + "\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

// signedIn returns the request's valid session, if any.
func (h *Handler) signedIn(r *http.Request) (string, bool) {
	if h.cfg.Key == "" {
		return "", false
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", false
	}
	enc := base64.RawURLEncoding
	p, s, ok := strings.Cut(c.Value, ".")
	payload, err1 := enc.DecodeString(p)
	sig, err2 := enc.DecodeString(s)
	if !ok || err1 != nil || err2 != nil || len(payload) != 8 || !hmac.Equal(sig, h.mac("session", payload)) {
		return "", false
	}
	if !h.cfg.Now().Before(time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)) {
		return "", false
	}
	return c.Value, true
}

// csrf is the token the page's forms carry: bound to the session.
func (h *Handler) csrf(session string) string {
	return base64.RawURLEncoding.EncodeToString(h.mac("csrf", []byte(session)))
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: "/admin", MaxAge: maxAge,
		HttpOnly: true, Secure: !loopback(r.Host), SameSite: http.SameSiteStrictMode,
	})
}

// sameOrigin refuses a browser's cross-site post (an Origin of another
// host); the SameSite=Strict cookie and the CSRF token also guard.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.render(w, http.StatusForbidden, View{Error: "The request came from another site."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if !h.validKey(r.PostFormValue("key")) {
		if h.cfg.Log != nil {
			h.cfg.Log.Warn("admin sign-in refused")
		}
		h.render(w, http.StatusUnauthorized, View{Error: "That is not the admin API key (adminApiKey of the config secret)."})
		return
	}
	h.setCookie(w, r, h.session(h.cfg.Now().Add(sessionTTL)), int(sessionTTL/time.Second))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// form guards a page action: a valid session, a same-origin post and the
// session's CSRF token.
func (h *Handler) form(next func(w http.ResponseWriter, r *http.Request) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		session, ok := h.signedIn(r)
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		switch {
		case !ok:
			h.render(w, http.StatusUnauthorized, View{Error: "Sign in first."})
			return
		case !sameOrigin(r) || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(h.csrf(session))):
			h.render(w, http.StatusForbidden, View{Error: "The form is stale or came from another site: reload the page."})
			return
		}
		flash := next(w, r)
		if flash == "" {
			return // next answered
		}
		http.Redirect(w, r, "/admin?"+url.Values{"flash": {flash}}.Encode(), http.StatusSeeOther)
	}
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) string {
	h.setCookie(w, r, "", -1)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
	return ""
}

func (h *Handler) replayForm(w http.ResponseWriter, r *http.Request) string {
	id := r.PathValue("sessionId")
	n, err := h.cfg.Replay(r.Context(), id)
	if err != nil {
		if h.cfg.Log != nil {
			h.cfg.Log.Error("admin replay failed", "session_id", id, "err", err)
		}
		return "Replay of session " + id + " failed: " + hitl.ErrorMessage(err)
	}
	return "Replayed " + strconv.Itoa(n) + " event(s) of session " + id + "."
}

func (h *Handler) setupForm(w http.ResponseWriter, r *http.Request) string {
	rep, err := h.cfg.Setup(r.Context(), h.base(r))
	if err != nil {
		return "Setup failed: " + hitl.ErrorMessage(err)
	}
	if len(rep.Checks) > 0 {
		return "Setup ran; " + strconv.Itoa(len(rep.Checks)) + " problem(s) remain: see below."
	}
	return "Setup ran: the providers' webhooks are in place."
}

func (h *Handler) actionForm(w http.ResponseWriter, r *http.Request) string {
	a, ok := h.action(r)
	if !ok {
		return "No such action."
	}
	res, err := a.Run(r.Context(), requestBase(r))
	if err != nil {
		if h.cfg.Log != nil {
			h.cfg.Log.Error("admin action failed", "provider", r.PathValue("provider"), "action", a.Name, "err", err)
		}
		return a.Label + ": " + hitl.ErrorMessage(err)
	}
	if res.Redirect != "" {
		http.Redirect(w, r, res.Redirect, http.StatusSeeOther)
		return ""
	}
	return res.Message
}

// PageAction is an action's button on the page.
type PageAction struct {
	Provider string
	Action
}

// View is what the page shows.
type View struct {
	Disabled   bool
	SignedIn   bool
	Error      string
	Flash      string
	CSRF       string
	Status     *Status
	Reports    []health.Report // the providers' and the bridge's
	Dead       []hitl.DeadLetter
	Sessions   []hitl.Session
	NoSessions string // why sessions are not listed
	Actions    []PageAction
}

func (h *Handler) showPage(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Key == "" {
		h.render(w, http.StatusNotFound, View{Disabled: true})
		return
	}
	session, ok := h.signedIn(r)
	if !ok {
		h.render(w, http.StatusOK, View{})
		return
	}
	ctx := r.Context()
	st := h.cfg.Checker.Check(ctx, h.base(r))
	v := View{SignedIn: true, CSRF: h.csrf(session), Status: &st, Reports: append(st.Providers, st.Bridge),
		Flash: r.URL.Query().Get("flash")}
	for _, p := range h.cfg.Checker.Providers {
		for _, a := range p.Actions {
			v.Actions = append(v.Actions, PageAction{Provider: p.Name, Action: a})
		}
	}
	dead, err := h.cfg.Checker.Store.DeadLetters(ctx, deadLetterScan)
	if err != nil {
		v.Error = "The dead letters could not be read; see the function's log."
		if h.cfg.Log != nil {
			h.cfg.Log.Error("admin page: dead letters", "err", err)
		}
	}
	v.Dead = dead
	if lister, ok := h.cfg.Checker.Store.(SessionLister); ok {
		if v.Sessions, err = lister.OpenSessions(ctx, 200); err != nil {
			v.NoSessions = "The open sessions could not be read; see the function's log."
		}
	} else {
		v.NoSessions = "This store does not list open sessions."
	}
	h.render(w, http.StatusOK, v)
}

// Page renders the operator page (package page). Until the handler has one
// (ServePage), the page's routes answer 404: the functions that serve no
// page do not link the template engine, whose method lookups keep every
// method of every type in a binary.
type Page func(w io.Writer, v View) error

// ServePage serves the operator page at /admin with render.
func (h *Handler) ServePage(render Page) { h.page = render }

func (h *Handler) render(w http.ResponseWriter, status int, v View) {
	if h.page == nil {
		writeError(w, http.StatusNotFound, hitl.CodeNotFound, "no such route")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin") // "no-referrer" makes browsers send Origin: null
	w.WriteHeader(status)
	if err := h.page(w, v); err != nil && !errors.Is(err, http.ErrHandlerTimeout) && h.cfg.Log != nil {
		h.cfg.Log.Error("render admin page", "err", err)
	}
}
