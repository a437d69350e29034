package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

func TestPublic(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		// IPv4
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false},
		{"198.18.0.1", false},
		{"192.0.0.9", false},
		{"192.88.99.1", false},
		{"203.0.113.5", false},
		// IPv6: global unicast only
		{"2606:4700::1111", true},
		{"2a00:1450:4001::200e", true},
		{"::1", false},
		{"::", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fec0::1", false}, // site-local (deprecated)
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"ff02::1", false},
		{"ff0e::1", false},
		{"100::1", false},
		{"2001:db8::1", false},
		{"3fff::1", false},
		{"2001:2::1", false},  // benchmarking, in 2001::/23
		{"2001:10::1", false}, // ORCHID, in 2001::/23
		{"4000::1", false},    // outside 2000::/3
		// IPv4-mapped
		{"::ffff:8.8.8.8", true},
		{"::ffff:127.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		// IPv4-compatible ::a.b.c.d
		{"::8.8.8.8", true},
		{"::127.0.0.1", false},
		{"::10.0.0.1", false},
		// SIIT IPv4-translated ::ffff:0:a.b.c.d
		{"::ffff:0:808:808", true},
		{"::ffff:0:7f00:1", false},
		{"::ffff:0:a9fe:a9fe", false},
		// NAT64 well-known prefix
		{"64:ff9b::808:808", true},
		{"64:ff9b::7f00:1", false},
		{"64:ff9b::a9fe:a9fe", false},
		// NAT64 local-use prefix, /96 layout only
		{"64:ff9b:1::808:808", true},
		{"64:ff9b:1::a00:1", false},
		{"64:ff9b:1::a9fe:a9fe", false},
		{"64:ff9b:1:a9fe:a9:fe00::", false}, // /48 layout of 169.254.169.254
		// 6to4: the embedded IPv4 after 2002:
		{"2002:808:808::1", true},
		{"2002:7f00:1::1", false},
		{"2002:a9fe:a9fe::1", false},
		{"2002:c0a8:101::1", false},
		// Teredo: server 4 bytes after 2001:0:, client inverted in the last 4
		{"2001:0:808:808:8000:ffff:f7f7:f7f7", true},  // client 8.8.8.8
		{"2001:0:808:808:8000:ffff:80ff:fffe", false}, // client 127.0.0.1
		{"2001:0:808:808:8000:ffff:5601:5601", false}, // client 169.254.169.254
		{"2001:0:7f00:1:8000:ffff:f7f7:f7f7", false},  // server 127.0.0.1
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := Public(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("Public(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestFetchRefusesBeforeConnecting(t *testing.T) {
	f := NewFetcher(Config{})
	for _, raw := range []string{
		"http://example.com/a.png",
		"ftp://example.com/a.png",
		"file:///etc/passwd",
		"https:///nohost",
		"::not a url",
	} {
		t.Run(raw, func(t *testing.T) {
			_, err := f.Fetch(context.Background(), raw, KindFile, 0)
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("err = %v, want ErrNotAllowed", err)
			}
		})
	}
}

func TestFetchDialGuard(t *testing.T) {
	var hits int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Write([]byte("secret"))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	f := NewFetcher(Config{})
	trustTestCert(f, srv)
	// A name that resolves to loopback is refused like the literal address:
	// the check runs on the resolved IP at dial time.
	for _, raw := range []string{srv.URL + "/x", "https://localhost:" + port + "/x"} {
		t.Run(raw, func(t *testing.T) {
			_, err := f.Fetch(context.Background(), raw, KindFile, 0)
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("err = %v, want ErrNotAllowed", err)
			}
			if strings.Contains(err.Error(), "/x") {
				t.Errorf("error quotes the URL: %v", err)
			}
		})
	}
	if hits != 0 {
		t.Fatalf("server was reached %d times", hits)
	}
}

func TestFetchRedirectGuard(t *testing.T) {
	inner := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("redirect target must not be reached")
	}))
	defer inner.Close()
	var target string
	outer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}))
	defer outer.Close()

	f := NewFetcher(Config{})
	trustTestCert(f, outer)
	// Pretend the first server is public; every other address goes through
	// the real guard.
	outerAddr := outer.Listener.Addr().String()
	dialer := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		if address == outerAddr {
			return nil
		}
		return f.checkDial(network, address, c)
	}}
	f.client.Transport.(*http.Transport).DialContext = dialer.DialContext

	for _, to := range []string{inner.URL + "/file", "http://example.com/file"} {
		t.Run(to, func(t *testing.T) {
			target = to
			_, err := f.Fetch(context.Background(), outer.URL+"/start", KindFile, 0)
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("err = %v, want ErrNotAllowed", err)
			}
		})
	}
}

func TestFetch(t *testing.T) {
	big := strings.Repeat("x", 2048)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/report.pdf":
			w.Header().Set("Content-Type", "application/pdf")
			w.Write([]byte("%PDF-1.4"))
		case "/download":
			w.Header().Set("Content-Disposition", `attachment; filename="../../etc/photo.png"`)
			w.Write([]byte("\x89PNG\r\n\x1a\n0000"))
		case "/big":
			w.Write([]byte(big))
		case "/big-chunked":
			w.Write([]byte(big[:1024]))
			w.(http.Flusher).Flush()
			w.Write([]byte(big[1024:]))
		case "/redirect":
			http.Redirect(w, r, "/files/report.pdf", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := NewFetcher(Config{AllowPrivate: true, MaxBytes: 4096})

	tests := []struct {
		path     string
		max      int64
		wantErr  error
		wantName string
		wantType string
	}{
		{path: "/files/report.pdf", wantName: "report.pdf", wantType: "application/pdf"},
		{path: "/redirect", wantName: "report.pdf", wantType: "application/pdf"},
		{path: "/download", wantName: "photo.png", wantType: "image/png"},
		{path: "/big", max: 1000, wantErr: ErrTooLarge},
		{path: "/big-chunked", max: 1000, wantErr: ErrTooLarge},
		{path: "/big", max: 1 << 30, wantName: "big", wantType: "text/plain; charset=utf-8"},
		{path: "/missing", wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			file, err := f.Fetch(context.Background(), srv.URL+tt.path, KindFile, tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			body, _ := io.ReadAll(file.Reader())
			if file.Name != tt.wantName || file.ContentType != tt.wantType || len(body) == 0 || int64(len(body)) != file.Size {
				t.Errorf("got name %q type %q, %d bytes (size %d)", file.Name, file.ContentType, len(body), file.Size)
			}
		})
	}
}

func TestFetchUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := NewFetcher(Config{AllowPrivate: true}).Fetch(context.Background(), url, KindFile, 0)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestFetchContextCanceled(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewFetcher(Config{AllowPrivate: true}).Fetch(ctx, srv.URL, KindFile, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func trustTestCert(f *Fetcher, srv *httptest.Server) {
	f.client.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("fetch: %w", ErrTooLarge):    "too_large",
		fmt.Errorf("fetch: %w", ErrNotAllowed):  "not_allowed",
		fmt.Errorf("fetch: %w", ErrUnavailable): "unavailable",
		errors.New("anything else"):             "unavailable",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}
