// Package media fetches a file an end user sent as a URL, so a provider can
// receive the file itself instead of a link.
//
// The URLs come from bots and end users, so a fetch is a server-side request
// to an address an outsider chose. The Fetcher refuses plain http, and any
// connection to an address that is not public unicast (see Public). The
// address check runs on the resolved IP at dial time, for every connection
// including redirects, so DNS rebinding cannot slip past it. Sizes and time
// are bounded. A file is spooled to a temporary file, never held in memory,
// and streamed from there to the provider: a 50 MiB file costs a function
// with 128 MB of memory no more than a small one. Its content type must fit
// the message type (an "image" must be an image), and content a browser
// would run (HTML, SVG, XML) is never passed on as a file. Errors are typed
// so callers can fall back to sending the link.
package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors a fetch can end with; each is wrapped with what failed.
var (
	// ErrNotAllowed: the URL's scheme, the address it resolves to, or the
	// file's content type is refused.
	ErrNotAllowed = errors.New("media URL not allowed")
	// ErrTooLarge: the file is larger than the limit.
	ErrTooLarge = errors.New("media file too large")
	// ErrUnavailable: the server could not be reached or did not answer 2xx.
	ErrUnavailable = errors.New("media file unavailable")
)

// Reason names why a fetch failed, for logs: "too_large", "not_allowed" or
// "unavailable".
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrNotAllowed):
		return "not_allowed"
	}
	return "unavailable"
}

// File is a fetched file, spooled to a temporary file: its size is known
// before it is sent, and it can be read any number of times (one per
// attempt of an upload) without being held in memory. Close removes it.
type File struct {
	Name        string // a safe base name (SafeName), never empty
	ContentType string
	Size        int64
	data        *os.File
}

// Reader reads the whole file from its start.
func (f *File) Reader() io.Reader { return io.NewSectionReader(f.data, 0, f.Size) }

// Close removes the temporary file.
func (f *File) Close() error {
	err := f.data.Close()
	if rmErr := os.Remove(f.data.Name()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
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
	// TempDir is where files are spooled; default os.TempDir() (/tmp in
	// Lambda, 512 MB).
	TempDir string
}

// Fetcher downloads media files. It is safe for concurrent use.
type Fetcher struct {
	client       *http.Client
	allowPrivate bool
	maxBytes     int64
	tempDir      string
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
	f := &Fetcher{allowPrivate: cfg.AllowPrivate, maxBytes: cfg.MaxBytes, tempDir: cfg.TempDir}
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

// Message types a file may be fetched for, as hitl names them.
const (
	KindImage = "image"
	KindAudio = "audio"
	KindVideo = "video"
	KindFile  = "file"
)

// Fetch downloads rawURL, sent as a message of type kind (KindImage, …),
// into a temporary file; the caller closes the File. maxBytes, when
// positive, lowers the Fetcher's limit for this call. Errors wrap
// ErrNotAllowed, ErrTooLarge or ErrUnavailable, or are the context's
// error; they name the host, never the full URL, whose query may carry a
// signature.
func (f *Fetcher) Fetch(ctx context.Context, rawURL, kind string, maxBytes int64) (*File, error) {
	limit := f.maxBytes
	if maxBytes > 0 && maxBytes < limit {
		limit = maxBytes
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse media URL: %w", ErrNotAllowed)
	}
	if err := f.checkURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch media from %s: %w", u.Hostname(), ErrNotAllowed)
	}
	failed := func(what string, err error) (*File, error) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s media from %s: %w", what, u.Hostname(), classify(err))
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return failed("fetch", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("fetch media from %s: HTTP %d: %w", u.Hostname(), resp.StatusCode, ErrUnavailable)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("fetch media from %s: %d bytes, limit %d: %w", u.Hostname(), resp.ContentLength, limit, ErrTooLarge)
	}
	declared := resp.Header.Get("Content-Type")
	if err := fits(kind, declared, false); err != nil {
		return nil, fmt.Errorf("fetch media from %s: %w", u.Hostname(), err)
	}
	data, err := os.CreateTemp(f.tempDir, "hitl-media-*")
	if err != nil {
		return nil, fmt.Errorf("spool media: %w", err)
	}
	file := &File{Name: fileName(resp), data: data}
	keep := false
	defer func() {
		if !keep {
			file.Close()
		}
	}()
	file.Size, err = io.Copy(data, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return nil, fmt.Errorf("spool media: %w", err)
		}
		return failed("read", err)
	}
	if file.Size > limit {
		return nil, fmt.Errorf("fetch media from %s: more than %d bytes: %w", u.Hostname(), limit, ErrTooLarge)
	}
	head := make([]byte, 512)
	n, err := data.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("spool media: %w", err)
	}
	sniffed := http.DetectContentType(head[:n])
	file.ContentType = declared
	if t, _, _ := mime.ParseMediaType(declared); t == "" || t == "application/octet-stream" {
		file.ContentType = sniffed
	}
	if err := fits(kind, file.ContentType, true); err != nil {
		return nil, fmt.Errorf("fetch media from %s: %w", u.Hostname(), err)
	}
	if active(sniffed) {
		return nil, fmt.Errorf("fetch media from %s: content looks like %s: %w", u.Hostname(), sniffed, ErrNotAllowed)
	}
	keep = true
	return file, nil
}

// fits checks a content type against the message type: images, audio and
// video must be what they say, and no kind may be something a browser
// runs. Before the download (strict false) an empty or generic type
// passes: the type sniffed from the content is checked after it.
func fits(kind, contentType string, strict bool) error {
	if contentType == "" && !strict {
		return nil
	}
	t, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("unreadable content type: %w", ErrNotAllowed)
	}
	if active(t) {
		return fmt.Errorf("content type %s: %w", t, ErrNotAllowed)
	}
	switch kind {
	case KindImage, KindAudio, KindVideo:
		if (strict || t != "application/octet-stream") && !strings.HasPrefix(t, kind+"/") {
			return fmt.Errorf("content type %s for a %s: %w", t, kind, ErrNotAllowed)
		}
	}
	return nil
}

// active reports whether a content type is one browsers render with
// scripts: a provider serving it from its own domain would run it there.
func active(contentType string) bool {
	t, _, _ := mime.ParseMediaType(contentType)
	switch t {
	case "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
		"text/javascript", "application/javascript", "application/ecmascript", "text/ecmascript":
		return true
	}
	return false
}

// Form is a multipart/form-data body carrying a File, for an upload. It
// holds only the form's framing; the file's bytes are read from the
// spooled copy each time the body is read.
type Form struct {
	ContentType string
	head, tail  []byte
	file        *File
}

// Form returns a form with the file as its part field, named filename
// (made safe with SafeName; the File's own name when empty), followed by
// the text fields given as name, value pairs.
func (f *File) Form(field, filename string, fields ...string) (*Form, error) {
	if filename == "" {
		filename = f.Name
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	// SafeName leaves no quote, backslash or control character to escape.
	h.Set("Content-Disposition", `form-data; name="`+field+`"; filename="`+SafeName(filename)+`"`)
	h.Set("Content-Type", f.ContentType)
	if _, err := w.CreatePart(h); err != nil {
		return nil, fmt.Errorf("encode upload form: %w", err)
	}
	head := bytes.Clone(buf.Bytes())
	buf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		if err := w.WriteField(fields[i], fields[i+1]); err != nil {
			return nil, fmt.Errorf("encode upload form: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode upload form: %w", err)
	}
	return &Form{ContentType: w.FormDataContentType(), head: head, tail: bytes.Clone(buf.Bytes()), file: f}, nil
}

// Size is the length of the whole body.
func (m *Form) Size() int64 { return int64(len(m.head)) + m.file.Size + int64(len(m.tail)) }

// Reader reads the whole body from its start.
func (m *Form) Reader() io.Reader {
	return io.MultiReader(bytes.NewReader(m.head), m.file.Reader(), bytes.NewReader(m.tail))
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

// Public reports whether ip is a public unicast address, the only kind a
// fetch may connect to. It is an allow-list: IPv4 outside every special-use
// range (RFC 6890 and successors), and IPv6 in global unicast 2000::/3
// outside its special-use blocks. An IPv6 address that embeds an IPv4 one
// (mapped, compatible, SIIT, NAT64, 6to4, Teredo) is judged by the IPv4
// address it leads to, so ::ffff:127.0.0.1 or 64:ff9b::a9fe:a9fe cannot
// reach loopback or the metadata service.
func Public(ip netip.Addr) bool {
	if ip.Zone() != "" {
		return false
	}
	ip = ip.Unmap() // ::ffff:a.b.c.d
	if ip.Is4() {
		return public4(ip)
	}
	if !ip.Is6() {
		return false
	}
	b := ip.As16()
	last4 := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case ipv4Compatible.Contains(ip), siit.Contains(ip), nat64.Contains(ip):
		return public4(last4)
	case nat64Local.Contains(ip):
		// RFC 8215 local-use NAT64: accepted in its /96 layout only, with
		// the IPv4 address in the last 32 bits and zeros between.
		return b[6] == 0 && b[7] == 0 && b[8] == 0 && b[9] == 0 && b[10] == 0 && b[11] == 0 && public4(last4)
	case sixToFour.Contains(ip):
		return public4(netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(ip):
		// The server's address, then the client's, stored inverted.
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return public4(netip.AddrFrom4([4]byte(b[4:8]))) && public4(netip.AddrFrom4(client))
	}
	if !globalUnicast6.Contains(ip) {
		return false // loopback, unspecified, ULA fc00::/7, link-local, site-local fec0::/10, multicast, …
	}
	for _, p := range special6 {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

func public4(ip netip.Addr) bool {
	for _, p := range special4 {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var (
	// IPv4 special-use ranges: none is a public unicast destination.
	special4 = prefixes(
		"0.0.0.0/8",       // "this network"
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // carrier-grade NAT
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
	)
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	// Special-use blocks inside 2000::/3, besides the embedding ones.
	special6 = prefixes(
		"2001::/23",     // IETF protocol assignments (Teredo is unwrapped before)
		"2001:db8::/32", // documentation
		"3fff::/20",     // documentation
	)
	ipv4Compatible = netip.MustParsePrefix("::/96")           // ::a.b.c.d (deprecated)
	siit           = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	teredo         = netip.MustParsePrefix("2001::/32")
)

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
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
	return SafeName(name)
}

// SafeName makes a file name safe to pass to a provider and to show an
// agent: its last path element, without control or formatting characters
// (bidirectional overrides that disguise an extension), quotes,
// backslashes or characters file systems reserve, without leading or
// trailing dots and spaces, at most 100 bytes (the end, with the
// extension, is kept). It is never empty.
func SafeName(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r), strings.ContainsRune(`/\"*:<>?|`, r):
			return -1
		}
		return r
	}, path.Base(strings.ReplaceAll(name, "\\", "/")))
	name = strings.Trim(name, ". ")
	for len(name) > 100 {
		_, size := utf8.DecodeRuneInString(name)
		name = name[size:]
	}
	name = strings.TrimLeft(name, ". ")
	if name == "" {
		return "file"
	}
	return name
}
