// Package apigw serves an http.Handler behind API Gateway HTTP APIs
// (payload format 2.0), so the same handlers run in Lambda and in the local
// server.
//
// It is written by hand rather than taken from aws-lambda-go-api-proxy:
// the conversion is about sixty lines, and the proxy module drags in the
// dependency trees of half a dozen web frameworks.
package apigw

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Handler is a Lambda handler for API Gateway HTTP API events.
type Handler func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// New adapts h.
func New(h http.Handler) Handler {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req, err := Request(ctx, e)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusBadRequest,
				Headers:    map[string]string{"Content-Type": "application/json"},
				Body:       `{"error":{"code":"invalid_argument","message":"the request could not be read"}}`,
			}, nil
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return Response(rec.Result().StatusCode, rec.Header(), rec.Body.Bytes()), nil
	}
}

// Request builds the http.Request that e describes.
func Request(ctx context.Context, e events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	body := e.Body
	if e.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(e.Body)
		if err != nil {
			return nil, fmt.Errorf("decode base64 body: %w", err)
		}
		body = string(b)
	}
	method := e.RequestContext.HTTP.Method
	if method == "" {
		return nil, fmt.Errorf("event has no HTTP method")
	}
	// The path is parsed as a request target, as net/http's server does,
	// and set on the request as is: a path starting with "//" stays a path
	// (which the handlers answer 404), it never becomes a host.
	u, err := url.ParseRequestURI(cmp.Or(e.RawPath, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse path: %w", err)
	}
	u.RawQuery = e.RawQueryString
	req, err := http.NewRequestWithContext(ctx, method, "/", strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.URL = u
	for k, v := range e.Headers {
		req.Header.Set(k, v)
	}
	if len(e.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(e.Cookies, "; "))
	}
	req.Host = e.Headers["host"]
	req.RemoteAddr = e.RequestContext.HTTP.SourceIP
	req.ContentLength = int64(len(body))
	return req, nil
}

// Response converts a recorded answer into the API Gateway response shape.
func Response(status int, h http.Header, body []byte) events.APIGatewayV2HTTPResponse {
	out := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for k, v := range h {
		if k == "Set-Cookie" {
			out.Cookies = append(out.Cookies, v...)
			continue
		}
		out.Headers[k] = strings.Join(v, ", ")
	}
	ct := h.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "text/") {
		out.Body = string(body)
	} else if len(body) > 0 {
		out.Body, out.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return out
}
