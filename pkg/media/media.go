// Package media fetches a file an end user sent as a URL, so a provider can
// receive the file itself instead of a link.
//
// The URLs come from bots and end users, so a fetch is a server-side request
// to an address an outsider chose. The Fetcher refuses plain http, and any
// connection to a loopback, private, link-local (cloud metadata),
// unspecified, multicast or otherwise reserved address. The address check
// runs on the resolved IP at dial time, for every connection including
// redirects, so DNS rebinding cannot slip past it. Sizes and time are
// bounded. Errors are typed so callers can fall back to sending the link.
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors a fetch can end with; each is wrapped with what failed.
var (
	// ErrNotAllowed: the URL's scheme or the address it resolves to is refused.
	ErrNotAllowed = errors.New("media URL not allowed")
	// ErrTooLarge: the file is larger than the limit.
	ErrTooLarge = errors.New("media file too large")
	// ErrUnavailable: the server could not be reached or did not answer 2xx.
	ErrUnavailable = errors.New("media file unavailable")
)

// File is a fetched file.
type File struct {
	Name        string // a safe base name, never empty
	ContentType string
	Body        []byte
}

// Config configures a Fetcher.
type Config struct {
	// AllowPrivate lets fetches use plain http and reach private and
	// loopback addresses. For tests and local demos only.
	AllowPrivate bool
	// MaxBytes caps every fetch; default 25 MiB.
	MaxBytes int64
	// Timeout bounds a whole fetch, body included; default 20 s.
	Timeout time.Duration
}

// Fetcher downloads media files. It is safe for concurrent use.
type Fetcher struct {
	client       *http.Client
	allowPrivate bool
	maxBytes     int64
}

const maxRedirects = 5

// NewFetcher returns a Fetcher with its own guarded HTTP transport. It
// uses no proxy: a proxy would make the address check apply to the proxy
// instead of the file's server.
func NewFetcher(cfg Config) *Fetcher {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 25 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	f := &Fetcher{allowPrivate: cfg.AllowPrivate, maxBytes: cfg.MaxBytes}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: f.checkDial}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	f.client = &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects: %w", maxRedirects, ErrUnavailable)
			}
			return f.checkURL(req.URL)
		},
	}
	return f
}

// Fetch downloads rawURL. maxBytes, when positive, lowers the Fetcher's
// limit for this call. Errors wrap ErrNotAllowed, ErrTooLarge or
// ErrUnavailable, or are the context's error; they name the host, never the
// full URL, whose query may carry a signature.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string, maxBytes int64) (File, error) {
	limit := f.maxBytes
	if maxBytes > 0 && maxBytes < limit {
		limit = maxBytes
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return File{}, fmt.Errorf("parse media URL: %w", ErrNotAllowed)
	}
	if err := f.checkURL(u); err != nil {
		return File{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return File{}, fmt.Errorf("fetch media from %s: %w", u.Hostname(), ErrNotAllowed)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return File{}, ctx.Err()
		}
		return File{}, fmt.Errorf("fetch media from %s: %w", u.Hostname(), classify(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return File{}, fmt.Errorf("fetch media from %s: HTTP %d: %w", u.Hostname(), resp.StatusCode, ErrUnavailable)
	}
	if resp.ContentLength > limit {
		return File{}, fmt.Errorf("fetch media from %s: %d bytes, limit %d: %w", u.Hostname(), resp.ContentLength, limit, ErrTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return File{}, ctx.Err()
		}
		return File{}, fmt.Errorf("read media from %s: %w", u.Hostname(), classify(err))
	}
	if int64(len(body)) > limit {
		return File{}, fmt.Errorf("fetch media from %s: more than %d bytes: %w", u.Hostname(), limit, ErrTooLarge)
	}
	contentType := resp.Header.Get("Content-Type")
	if contentType == "" {
		contentType = http.DetectContentType(body)
	}
	return File{Name: fileName(resp), ContentType: contentType, Body: body}, nil
}

// classify keeps the guard's verdict visible through net/http's wrapping and
// reduces everything else to ErrUnavailable, dropping the URL it quotes.
func classify(err error) error {
	if errors.Is(err, ErrNotAllowed) {
		return ErrNotAllowed
	}
	if errors.Is(err, ErrUnavailable) {
		return ErrUnavailable
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return fmt.Errorf("%v: %w", err, ErrUnavailable)
}

func (f *Fetcher) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.allowPrivate:
	default:
		return fmt.Errorf("media URL scheme %q: %w", u.Scheme, ErrNotAllowed)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("media URL has no host: %w", ErrNotAllowed)
	}
	return nil
}

// checkDial runs after name resolution, on the address about to be
// connected to.
func (f *Fetcher) checkDial(network, address string, _ syscall.RawConn) error {
	if f.allowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", network, ErrNotAllowed)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("address %s: %w", ap.Addr(), ErrNotAllowed)
	}
	return nil
}

// Reserved ranges that netip's predicates do not cover.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
}

// nat64 embeds an IPv4 address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Public reports whether ip is a globally routable unicast address, the
// only kind a fetch may connect to.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		ip.IsMulticast() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return false
		}
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		return Public(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	return true
}

// fileName picks a name from Content-Disposition or the final URL path and
// makes it safe to pass on.
func fileName(resp *http.Response) string {
	name := ""
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		name = params["filename"]
	}
	if name == "" && resp.Request != nil {
		name = path.Base(resp.Request.URL.Path)
	}
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			return -1
		}
		return r
	}, path.Base(name))
	name = strings.Trim(name, ". ")
	for len(name) > 100 {
		_, size := utf8.DecodeRuneInString(name)
		name = name[size:]
	}
	if name == "" {
		return "file"
	}
	return name
}
