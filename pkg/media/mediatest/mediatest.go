// Package mediatest serves the media files that tests of the providers'
// uploads fetch through a media.Fetcher.
package mediatest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
)

// pngImage is what /photo.png serves: a PNG signature and filler.
var pngImage = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 2000)...)

// pdfDocument is what /report.pdf serves.
var pdfDocument = []byte("%PDF-1.4 report")

// hugeBytes is the size /huge.bin declares: more than any platform takes
// (SalesIQ's 50 MB limit included).
const hugeBytes = 51 << 20

// streamBytes is the size /stream.bin sends without declaring it: more
// than LiveChat's 10 MB upload limit.
const streamBytes = 11 << 20

// NewServer starts a server of /photo.png, /report.pdf, /huge.bin (whose
// declared length is refused before anything is read: it sends nothing)
// and /stream.bin (cut off by the reader's limit as it streams); any
// other path is 404. The caller closes it.
func NewServer() *httptest.Server {
	stream := bytes.Repeat([]byte("x"), streamBytes)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/photo.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(pngImage)
		case "/report.pdf":
			w.Header().Set("Content-Type", "application/pdf")
			w.Write(pdfDocument)
		case "/huge.bin":
			w.Header().Set("Content-Length", strconv.Itoa(hugeBytes))
		case "/stream.bin":
			w.Write(stream)
		default:
			http.NotFound(w, r)
		}
	}))
}
