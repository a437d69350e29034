package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

// Operators fill the config secret only; the token refresh function copies
// its ingress part into the ingress secret, which is all the webhooks
// function reads: no provider, bot API or operator credential.
func TestIngressSecretIsDerivedAndIsAllTheWebhooksFunctionHolds(t *testing.T) {
	ctx := context.Background()
	sm := awstest.SecretsManager(t)
	name := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	lc := livechattest.New(livechattest.Options{OrganizationID: "org-1"})
	t.Cleanup(lc.Close)
	agentToken := lc.AgentToken()
	configDoc := `{"botApiKeys":["bot-key-0123456789abcdef"],"callbackSigningSecret":"sign-0123456789abcdef",
		"adminApiKey":"admin-key-0123456789abcdef","botpressPathToken":"bp-token-0123456789abcdef",
		"botpressWebhookUrl":"https://webhook.botpress.example/hook-id",
		"livechat":{"agentToken":"` + agentToken + `","webhookSecret":"lc-webhook-secret"}}`
	create := func(suffix, value string) string {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name + suffix), SecretString: aws.String(value)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ARN)
	}
	configARN, ingressARN := create("-config", configDoc), create("-ingress", "{}")
	table := "hitl-" + fmt.Sprint(time.Now().UnixNano())
	if err := dynamo.CreateTable(ctx, awstest.DynamoDB(t), table); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": awstest.Endpoint(t), "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
		"TABLE_NAME": table, "BOT_CALLBACK_URL": "https://bot.example.com/hitl",
		"LIVECHAT_ORGANIZATION_ID": "org-1", "LIVECHAT_CLIENT_ID": "client-1", "LIVECHAT_REDIRECT_URI": "https://bot.example.com/",
		"INGRESS_SECRET_ARN": ingressARN, "CONFIG_SECRET_ARN": "",
		"LIVECHAT_API_URL": lc.APIURL(), "LIVECHAT_ACCOUNTS_URL": lc.AccountsURL(), "HITL_ALLOW_PRIVATE_URLS": "true",
	} {
		t.Setenv(k, v)
	}
	log := slog.New(slog.DiscardHandler)
	if _, err := app.LoadWebhooks(ctx, log); err == nil || !strings.Contains(err.Error(), "token refresh function") {
		t.Fatalf("webhooks function before the ingress secret was derived: %v", err)
	}

	t.Setenv("CONFIG_SECRET_ARN", configARN) // the token refresh function's environment
	refresh, err := app.LoadTokenRefresh(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := refresh(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(ingressARN)})
	if err != nil {
		t.Fatal(err)
	}
	ingress := aws.ToString(out.SecretString)
	var doc map[string]any
	if err := json.Unmarshal([]byte(ingress), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["callbackSigningSecret"] != "sign-0123456789abcdef" || doc["botpressWebhookUrl"] != "https://webhook.botpress.example/hook-id" ||
		doc["livechat"].(map[string]any)["webhookSecret"] != "lc-webhook-secret" ||
		doc["livechat"].(map[string]any)["integrationAgentId"] != lc.Options().IntegrationAgentID {
		t.Fatalf("ingress secret lacks what the webhooks function needs: %v %d", keys(doc), len(ingress))
	}
	for _, credential := range []string{"bot-key-", "admin-key-", "bp-token-", agentToken} {
		if strings.Contains(ingress, credential) {
			t.Fatalf("the ingress secret holds a credential the webhooks function does not need (%s…)", credential[:4])
		}
	}

	t.Setenv("CONFIG_SECRET_ARN", "") // the webhooks function's environment
	h, err := app.LoadWebhooks(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	if webhooks := h.(*app.Webhooks); len(webhooks.Bridge.Providers) != 0 {
		t.Fatalf("the webhooks function has provider clients: %v", webhooks.Bridge.Providers)
	}
	// Unchanged config: the next run writes nothing.
	before := aws.ToString(out.VersionId)
	if err := refresh(ctx); err != nil {
		t.Fatal(err)
	}
	out, _ = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(ingressARN)})
	if aws.ToString(out.VersionId) != before {
		t.Fatal("an unchanged config secret rewrote the ingress secret")
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
