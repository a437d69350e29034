package awstest

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Config is an SDK configuration for endpoint: region us-east-1, static
// test credentials, and no retries, so a test sees every failure and a
// Counter sees one request per call. Nothing is read from the environment
// or ~/.aws.
//
// Its clients send one request at a time, across the test binary: AWS
// applies each request atomically, which conditional writes rely on, but
// moto_server runs concurrent requests interleaved, so two conditional
// updates of one item can both succeed and one of them be lost.
func Config(endpoint string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:   &http.Client{Transport: oneAtATime{http.DefaultTransport}},
	}
}

// oneAtATime sends one request at a time and reads each answer in full
// before the next request starts, so no connection is shared by two
// requests in flight.
type oneAtATime struct{ next http.RoundTripper }

var requestMu sync.Mutex

func (t oneAtATime) RoundTrip(r *http.Request) (*http.Response, error) {
	requestMu.Lock()
	defer requestMu.Unlock()
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// DynamoDB returns a DynamoDB client of the test binary's moto_server.
// optFns adjust it, e.g. to add a Counter.
func DynamoDB(t testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	return dynamodb.NewFromConfig(Config(Endpoint(t)), optFns...)
}

// SecretsManager returns a Secrets Manager client of the test binary's
// moto_server. optFns adjust it, e.g. to add a Counter.
func SecretsManager(t testing.TB, optFns ...func(*secretsmanager.Options)) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.NewFromConfig(Config(Endpoint(t)), optFns...)
}
