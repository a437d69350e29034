package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
)

func TestDoctorNamesEachProblemAndItsFix(t *testing.T) {
	lc := livechattest.New(livechattest.Options{})
	defer lc.Close()
	secret, _ := json.Marshal(map[string]any{
		"botApiKeys": []string{"bot-key-0123456789"}, "callbackSigningSecret": "signing-secret-0123456789",
		"livechat": map[string]string{"agentToken": lc.AgentToken(), "webhookSecret": "webhook-secret-0123456789"},
	})
	env := map[string]string{
		"HITL_STORE_PATH": t.TempDir() + "/b.db", "HITL_SECRET_JSON": string(secret), "HITL_ALLOW_PRIVATE_URLS": "true",
		"BOT_CALLBACK_URL": "http://127.0.0.1:9/hitl", "PUBLIC_URL": "https://bridge.example.com",
		"LIVECHAT_ORGANIZATION_ID": lc.Options().OrganizationID, "LIVECHAT_CLIENT_ID": lc.Options().ClientID,
		"LIVECHAT_REDIRECT_URI": "https://bridge.example.com/", "LIVECHAT_API_URL": lc.APIURL(), "LIVECHAT_ACCOUNTS_URL": lc.AccountsURL(),
	}
	var out bytes.Buffer
	err := run(t.Context(), []string{"-doctor"}, func(k string) string { return env[k] }, &out, io.Discard)
	s := out.String()
	if err == nil || !strings.Contains(s, "livechat: failing") || !strings.Contains(s, "[failing] installed") ||
		!strings.Contains(s, "fix: in the LiveChat Developer Console") || !strings.Contains(s, "https://bridge.example.com/webhooks/livechat") {
		t.Fatalf("err %v, output:\n%s", err, s)
	}
	if strings.Contains(s, lc.AgentToken()) || strings.Contains(s, "webhook-secret-0123456789") {
		t.Fatal("the output shows a secret")
	}
	if len(lc.Webhooks()) != 0 {
		t.Fatal("the doctor changed registrations")
	}
}
