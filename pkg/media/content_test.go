package media

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

var png = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"

func TestFetchChecksTheContentTypeAgainstTheMessageType(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct, body := r.URL.Query().Get("ct"), r.URL.Query().Get("body")
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		} else {
			w.Header()["Content-Type"] = nil // no type: sniffed
		}
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	f := NewFetcher(Config{AllowPrivate: true})
	html := "<!DOCTYPE html><script>alert(1)</script>"
	tests := []struct {
		kind, ct, body string
		wantType       string // "" when refused
	}{
		{KindImage, "image/png", png, "image/png"},
		{KindImage, "", png, "image/png"},
		{KindImage, "application/octet-stream", png, "image/png"},
		{KindImage, "text/html", html, ""},
		{KindImage, "text/html; charset=utf-8", png, ""},
		{KindImage, "image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg'/>", ""},
		{KindImage, "application/pdf", "%PDF-1.4", ""},
		{KindImage, "", html, ""},
		{KindImage, "image/png", html, ""}, // says image, is HTML
		{KindImage, "application/octet-stream", "\x00\x01\x02binary", ""},
		{KindAudio, "audio/mpeg", "ID3\x03", "audio/mpeg"},
		{KindAudio, "video/mp4", "x", ""},
		{KindVideo, "video/mp4", "\x00\x00\x00\x18ftypmp42", "video/mp4"},
		{KindVideo, "image/gif", "GIF89a", ""},
		{KindFile, "application/pdf", "%PDF-1.4", "application/pdf"},
		{KindFile, "", "plain words", "text/plain; charset=utf-8"},
		{KindFile, "text/html", html, ""},
		{KindFile, "application/xhtml+xml", "<html/>", ""},
		{KindFile, "text/plain", html, ""}, // sniffed HTML is never passed on
		{KindFile, "not a type", "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.ct, func(t *testing.T) {
			file, err := f.Fetch(context.Background(), srv.URL+"/f?ct="+url.QueryEscape(tt.ct)+"&body="+url.QueryEscape(tt.body), tt.kind, 0)
			if tt.wantType == "" {
				if !errors.Is(err, ErrNotAllowed) {
					t.Fatalf("err = %v, want ErrNotAllowed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			if file.ContentType != tt.wantType {
				t.Fatalf("content type %q, want %q", file.ContentType, tt.wantType)
			}
		})
	}
}

func TestSafeName(t *testing.T) {
	tests := map[string]string{
		"report.pdf":                       "report.pdf",
		"../../etc/passwd":                 "passwd",
		`..\..\windows\win.ini`:            "win.ini",
		"invoice\u202Efdp.exe":             "invoicefdp.exe", // right-to-left override dropped
		"a\r\nContent-Type: text/html.png": "html.png",
		"line\r\nbreak.png":                "line  break.png",
		`say "hi".txt`:                     "say hi.txt",
		"...hidden":                        "hidden",
		"trailing. . ":                     "trailing",
		"":                                 "file",
		"/":                                "file",
		"..":                               "file",
		"\x00\x01":                         "file",
		"tab\there.png":                    "tab here.png",
		"bad\xffutf8.png":                  "badutf8.png",
		strings.Repeat("é", 80) + ".png":   strings.Repeat("é", 48) + ".png",
	}
	for in, want := range tests {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormStreamsTheSpooledFileAndIsRereadable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = io.WriteString(w, png+strings.Repeat("p", 100_000))
	}))
	defer srv.Close()
	dir := t.TempDir()
	file, err := NewFetcher(Config{AllowPrivate: true, TempDir: dir}).Fetch(context.Background(), srv.URL+"/x.png", KindImage, 0)
	if err != nil {
		t.Fatal(err)
	}
	form, err := file.Form("file", `evil"; name="other.png`, "comment", "the receipt")
	if err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 { // an upload's retry reads it again
		raw, _ := io.ReadAll(form.Reader())
		if int64(len(raw)) != form.Size() {
			t.Fatalf("attempt %d: read %d bytes, Size says %d", attempt, len(raw), form.Size())
		}
		_, params, _ := mime.ParseMediaType(form.ContentType)
		mr := multipart.NewReader(strings.NewReader(string(raw)), params["boundary"])
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		if p.FormName() != "file" || p.FileName() != "evil; name=other.png" || p.Header.Get("Content-Type") != "image/png" || int64(len(body)) != file.Size {
			t.Fatalf("file part: name %q file %q type %q, %d bytes", p.FormName(), p.FileName(), p.Header.Get("Content-Type"), len(body))
		}
		p, err = mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := io.ReadAll(p); p.FormName() != "comment" || string(v) != "the receipt" {
			t.Fatalf("comment part %q = %q", p.FormName(), v)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d spooled files, want 1", len(entries))
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Close left %d files behind", len(entries))
	}
}

// A refused or failed fetch leaves nothing on disk.
func TestFailedFetchLeavesNoSpooledFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 5000))
	}))
	defer srv.Close()
	dir := t.TempDir()
	f := NewFetcher(Config{AllowPrivate: true, TempDir: dir, MaxBytes: 1000})
	if _, err := f.Fetch(context.Background(), srv.URL, KindFile, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if _, err := f.Fetch(context.Background(), srv.URL, KindImage, 1<<20); err == nil {
		t.Fatal("text fetched as an image")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d files left behind", len(entries))
	}
}
