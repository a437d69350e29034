package secrets_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/secrets"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

func TestCacheCallsSecretsManagerOncePerPeriod(t *testing.T) {
	counter := &awstest.Counter{}
	sm := awstest.SecretsManager(t, func(o *secretsmanager.Options) { o.APIOptions = append(o.APIOptions, counter.AddTo) })
	ctx := context.Background()
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(t.Name()), SecretString: aws.String(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	cache := secrets.NewCache(sm, 5*time.Minute, func() time.Time { return now })
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if v, err := cache.Get(ctx, aws.ToString(out.ARN)); err != nil || string(v) != `{"a":1}` {
				t.Errorf("Get = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if n := counter.Count("GetSecretValue"); n != 1 {
		t.Fatalf("%d GetSecretValue calls for 50 reads in one period", n)
	}
	now = now.Add(6 * time.Minute)
	if _, err := cache.Get(ctx, aws.ToString(out.ARN)); err != nil || counter.Count("GetSecretValue") != 2 {
		t.Fatalf("after the period: err %v, %d calls", err, counter.Count("GetSecretValue"))
	}
}

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
