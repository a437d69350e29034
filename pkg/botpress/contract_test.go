package botpress_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The two OpenAPI files Botpress publishes for the integration, read as
// published from ../shared/contracts beside the repository: what the
// integration sends us and what we must answer (external service), and
// what we send its webhook.
const (
	serviceContract = "openapi-external-service.json"
	webhookContract = "openapi-botpress-webhook.json"
)

// contract checks requests and answers against one of them.
type contract struct {
	doc *openapi3.T
}

func loadContract(t testing.TB, file string) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(filepath.Join("..", "..", "..", "shared", "contracts", "botpress-hitl-api", file))
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not valid OpenAPI: %v", file, err)
	}
	return &contract{doc: doc}
}

// input is the validation input of a POST of body to path.
func (c *contract) input(t testing.TB, path string, body []byte) *openapi3filter.RequestValidationInput {
	t.Helper()
	item := c.doc.Paths.Find(path)
	if item == nil || item.Post == nil {
		t.Fatalf("the contract has no POST %s", path)
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return &openapi3filter.RequestValidationInput{
		Request: req,
		Route:   &routers.Route{Spec: c.doc, Path: path, PathItem: item, Method: http.MethodPost, Operation: item.Post},
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
}

// checkRequest fails t unless body is a valid request body of POST path.
func (c *contract) checkRequest(t testing.TB, path string, body []byte) {
	t.Helper()
	if err := openapi3filter.ValidateRequest(context.Background(), c.input(t, path, body)); err != nil {
		t.Errorf("POST %s body %s does not conform to the contract: %v", path, body, err)
	}
}

// checkAnswer fails t unless status, header and body are a documented
// answer to POST path with reqBody.
func (c *contract) checkAnswer(t testing.TB, path string, reqBody []byte, status int, header http.Header, body []byte) {
	t.Helper()
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: c.input(t, path, reqBody), Status: status, Header: header,
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in.SetBodyBytes(body)); err != nil {
		t.Errorf("answer %d %s to POST %s does not conform to the contract: %v", status, body, path, err)
	}
}
