package apigw

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestRoundTrip(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/v1/users" || r.URL.Query().Get("a") != "1" ||
			r.Header.Get("Authorization") != "Bearer k" || string(body) != `{"x":1}` {
			t.Errorf("request not rebuilt: %s %s %v %q", r.Method, r.URL, r.Header, body)
		}
		if c, err := r.Cookie("c"); err != nil || c.Value != "v" {
			t.Errorf("cookie not passed: %v", err)
		}
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1"})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	for _, b64 := range []bool{false, true} {
		body := `{"x":1}`
		if b64 {
			body = base64.StdEncoding.EncodeToString([]byte(body))
		}
		e := events.APIGatewayV2HTTPRequest{
			RawPath: "/v1/users", RawQueryString: "a=1", Body: body, IsBase64Encoded: b64,
			Headers: map[string]string{"authorization": "Bearer k"}, Cookies: []string{"c=v"},
		}
		e.RequestContext.HTTP.Method = "POST"
		resp, err := New(h)(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 201 || resp.Body != `{"ok":true}` || resp.IsBase64Encoded || len(resp.Cookies) != 1 {
			t.Fatalf("response = %+v", resp)
		}
	}
}

func TestBadBase64IsAClientError(t *testing.T) {
	e := events.APIGatewayV2HTTPRequest{RawPath: "/", Body: "%%%", IsBase64Encoded: true}
	e.RequestContext.HTTP.Method = "POST"
	resp, err := New(http.NotFoundHandler())(context.Background(), e)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("resp = %+v, err = %v", resp, err)
	}
}

func TestBinaryResponseIsBase64(t *testing.T) {
	resp := Response(200, http.Header{"Content-Type": {"image/png"}}, []byte{0x89, 'P', 'N', 'G'})
	if !resp.IsBase64Encoded || resp.Body != base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G'}) {
		t.Fatalf("resp = %+v", resp)
	}
}

// A raw path starting with "//" must stay a path: it never names a host.
func TestDoubleSlashPathIsNotAHost(t *testing.T) {
	for _, raw := range []string{"//evil.example/v1/users", "///x", "//127.0.0.1:8080/healthz"} {
		req, err := Request(context.Background(), events.APIGatewayV2HTTPRequest{
			RawPath: raw, RawQueryString: "a=1",
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET"}},
			Headers:        map[string]string{"host": "api.example"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if req.URL.Host != "" || req.URL.Path != raw || req.Host != "api.example" || req.URL.RawQuery != "a=1" {
			t.Fatalf("%s: URL host %q path %q, request host %q", raw, req.URL.Host, req.URL.Path, req.Host)
		}
	}
}

func TestEncodedPathIsDecodedAsNetHTTPDoes(t *testing.T) {
	req, err := Request(context.Background(), events.APIGatewayV2HTTPRequest{
		RawPath:        "/v1/sessions/ses%5F1",
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET"}},
	})
	if err != nil || req.URL.Path != "/v1/sessions/ses_1" {
		t.Fatalf("path %q, %v", req.URL.Path, err)
	}
}
