package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
	"github.com/hitl-bridge/hitl-bridge/pkg/secrets"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

// The AWS loaders: settings from the environment, a secret from Secrets
// Manager, DynamoDB as store, then the function's constructor. They run
// once, at cold start: a warm container never calls Secrets Manager (a
// changed config secret takes effect at the next cold start).

// LoadWebhooks wires the webhooks function. It reads the ingress secret
// (INGRESS_SECRET_ARN) instead of the config secret, so it holds only what
// verifying webhooks and calling the bot back needs, and no provider, bot
// API or operator credential.
func LoadWebhooks(ctx context.Context, log *slog.Logger) (http.Handler, error) {
	f, err := loadAWS(ctx, log, true)
	if err == nil {
		var w *Webhooks
		if w, err = NewWebhooks(f.c, f.o); err == nil {
			return w, nil
		}
	}
	return nil, fmt.Errorf("%w\n(the ingress secret is derived from the config secret by the token refresh function, every 5 minutes: fill the config secret, then wait or invoke that function once)", err)
}

// LoadActions wires the actions function.
func LoadActions(ctx context.Context, log *slog.Logger) (http.Handler, error) {
	f, err := loadAWS(ctx, log, false)
	if err != nil {
		return nil, err
	}
	return NewActions(f.c, f.o)
}

// LoadAdmin wires the admin function, its page rendered by render.
func LoadAdmin(ctx context.Context, log *slog.Logger, render admin.Page) (http.Handler, error) {
	f, err := loadAWS(ctx, log, false)
	if err != nil {
		return nil, err
	}
	return NewAdmin(f.c, f.o, render)
}

// LoadRedelivery wires the redelivery function's work.
func LoadRedelivery(ctx context.Context, log *slog.Logger) (func(context.Context) error, error) {
	f, err := loadAWS(ctx, log, false)
	if err != nil {
		return nil, err
	}
	return NewRedelivery(f.c, f.o)
}

// LoadTokenRefresh wires the token refresh function's work. With
// INGRESS_SECRET_ARN set, each run also keeps the ingress secret derived
// from the config secret.
func LoadTokenRefresh(ctx context.Context, log *slog.Logger) (func(context.Context) error, error) {
	f, err := loadAWS(ctx, log, false)
	if err != nil {
		return nil, err
	}
	if arn := f.c.IngressSecretARN; arn != "" && arn != f.c.ConfigSecretARN {
		f.o.ConfigSecret = secrets.Document{API: f.sm, ID: f.c.ConfigSecretARN}
		f.o.IngressSecret = secrets.Document{API: f.sm, ID: arn}
	}
	return NewTokenRefresh(f.c, f.o)
}

// awsFunction is what a Lambda function reads at cold start.
type awsFunction struct {
	c  config.Config // with the secret
	o  Options
	sm *secretsmanager.Client
}

// loadAWS reads the settings and the function's secret: the ingress
// secret with ingress (the webhooks function), else the config secret.
// The secret is the one read before the function is wired (building the
// SDK clients takes microseconds: nothing worth overlapping with it);
// platforms start their own reads in the background once wired
// (integration.Parts.Preload).
func loadAWS(ctx context.Context, log *slog.Logger, ingress bool) (awsFunction, error) {
	var f awsFunction
	c, err := config.Env(os.Getenv, Integrations())
	if err != nil {
		return f, fmt.Errorf("invalid environment:\n%w", err)
	}
	secretARN := c.ConfigSecretARN
	if ingress && c.IngressSecretARN != "" {
		secretARN = c.IngressSecretARN
	} else if ingress {
		// sam local and test harnesses set only CONFIG_SECRET_ARN; the
		// template gives the webhooks function the ingress secret alone.
		log.Warn("INGRESS_SECRET_ARN is not set: the webhooks function reads the config secret and keeps only its ingress part")
	}
	if c.TableName == "" || secretARN == "" {
		return f, fmt.Errorf("TABLE_NAME and INGRESS_SECRET_ARN or CONFIG_SECRET_ARN are required")
	}
	awsCfg, err := lambdaAWSConfig(os.Getenv)
	if err != nil {
		return f, err
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	var raw json.RawMessage
	if err := (secrets.Document{API: sm, ID: secretARN}).Load(ctx, &raw); err != nil {
		return f, err
	}
	f.sm = sm
	f.o = Options{
		Store: dynamo.New(dynamodb.NewFromConfig(awsCfg), c.TableName), Log: log, Metrics: metrics.New(os.Stdout, nil),
		Documents: func(_, secretARN string) integration.Document {
			if secretARN == "" {
				return nil
			}
			return secrets.Document{API: sm, ID: secretARN}
		},
	}
	if c.Secret, err = config.ParseSecret(raw); err != nil {
		return f, err
	}
	f.c = c
	return f, nil
}

// lambdaAWSConfig is the AWS configuration Lambda gives a function in its
// environment: the region, the execution role's credentials and, for
// sam local and the tests, AWS_ENDPOINT_URL. It is built from the
// environment alone rather than by config.LoadDefaultConfig, whose
// resolver chain (shared files, SSO, STS, instance metadata) is never used
// in Lambda yet links and initialises an SDK client for each of those
// services in every function: about 2 MB of each binary and part of its
// cold start.
func lambdaAWSConfig(getenv func(string) string) (aws.Config, error) {
	region, key, secret := getenv("AWS_REGION"), getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if region == "" || key == "" || secret == "" {
		return aws.Config{}, errors.New("AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required (Lambda sets them)")
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, getenv("AWS_SESSION_TOKEN")),
	}
	if u := getenv("AWS_ENDPOINT_URL"); u != "" {
		cfg.BaseEndpoint = &u
	}
	return cfg, nil
}

// syncIngress keeps the ingress secret equal to the ingress part of the
// config secret (config.Secret.Ingress with each platform's ingress
// block), so operators fill one secret and the webhooks function still
// reads only what it needs. It reads the config secret afresh (this
// container's copy may be old) and rewrites the ingress secret when its
// content differs.
func (w *wiring) syncIngress(ctx context.Context) error {
	var raw json.RawMessage
	if err := w.o.ConfigSecret.Load(ctx, &raw); err != nil {
		return fmt.Errorf("derive the ingress secret: %w", err)
	}
	secret, err := config.ParseSecret(raw)
	if err != nil {
		return fmt.Errorf("derive the ingress secret: %w", err)
	}
	blocks := map[string]json.RawMessage{}
	for _, p := range w.platforms {
		block, ok := secret.Blocks[p.name]
		switch {
		case !ok:
		case p.Ingress == nil:
			blocks[p.name] = json.RawMessage("{}")
		default:
			if blocks[p.name], err = p.Ingress(ctx, block); err != nil {
				return fmt.Errorf("derive the ingress secret: %s: %w", p.name, err)
			}
		}
	}
	want, err := secret.Ingress(blocks).Document()
	if err != nil {
		return fmt.Errorf("derive the ingress secret: %w", err)
	}
	var current json.RawMessage
	if err := w.o.IngressSecret.Load(ctx, &current); err != nil {
		return fmt.Errorf("read the ingress secret: %w", err)
	}
	if have, err := config.ParseSecret(current); err == nil {
		if doc, err := have.Document(); err == nil && bytes.Equal(doc, want) {
			return nil
		}
	}
	if err := w.o.IngressSecret.Save(ctx, json.RawMessage(want)); err != nil {
		return fmt.Errorf("write the ingress secret: %w", err)
	}
	w.o.Log.Info("ingress secret updated from the config secret")
	return nil
}
