package secrets_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/secrets"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

type token struct {
	Access string `json:"access"`
	N      int    `json:"n"`
}

func TestDocumentRoundTrip(t *testing.T) {
	sm := awstest.SecretsManager(t)
	ctx := context.Background()
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(t.Name()), SecretString: aws.String("{}")})
	if err != nil {
		t.Fatal(err)
	}
	doc := secrets.Document{API: sm, ID: aws.ToString(out.ARN)}
	var empty token
	if err := doc.Load(ctx, &empty); err != nil || empty != (token{}) {
		t.Fatalf("empty document: %+v, %v", empty, err)
	}
	if err := doc.Save(ctx, token{Access: "x", N: 2}); err != nil {
		t.Fatal(err)
	}
	var got token
	if err := doc.Load(ctx, &got); err != nil || got != (token{Access: "x", N: 2}) {
		t.Fatalf("loaded %+v, %v", got, err)
	}
}

func TestFileRoundTripIsPrivate(t *testing.T) {
	f := secrets.File{Path: filepath.Join(t.TempDir(), "token.json")}
	var got token
	if err := f.Load(context.Background(), &got); err != nil || got != (token{}) {
		t.Fatalf("missing file: %+v, %v", got, err)
	}
	if err := f.Save(context.Background(), token{Access: "y", N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Load(context.Background(), &got); err != nil || got.Access != "y" {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if st, _ := os.Stat(f.Path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
}
