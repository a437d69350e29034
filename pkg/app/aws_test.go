package app

import (
	"context"
	"strings"
	"testing"
)

func TestLambdaAWSConfigIsTheEnvironments(t *testing.T) {
	env := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "session"}
	cfg, err := lambdaAWSConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || cfg.Region != "eu-west-1" || creds.AccessKeyID != "AKIDEXAMPLE" || creds.SessionToken != "session" || cfg.BaseEndpoint != nil {
		t.Fatalf("config %+v, credentials %+v, %v", cfg, creds, err)
	}
	env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:5000"
	if cfg, _ := lambdaAWSConfig(func(k string) string { return env[k] }); cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != env["AWS_ENDPOINT_URL"] {
		t.Fatalf("AWS_ENDPOINT_URL not used: %+v", cfg.BaseEndpoint)
	}
	delete(env, "AWS_REGION")
	if _, err := lambdaAWSConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Fatalf("without a region: %v", err)
	}
}
