package app_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// httptestServer serves fixed files and counts requests.
type httptestServer struct {
	*httptest.Server
	n atomic.Int32
}

func (s *httptestServer) hits() int { return int(s.n.Load()) }

func startFileServer(t *testing.T, files map[string][]byte) *httptestServer {
	s := &httptestServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/photo.png" {
			w.Header().Set("Content-Type", "image/png")
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}
