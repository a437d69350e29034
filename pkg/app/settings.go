package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

// settings keeps the bridge's own non-secret documents in the store, where
// every function reads them: the SalesIQ webhook and its public keys (a
// public key is no secret, so the webhooks function needs no access to the
// Zoho token secret to verify deliveries) and when each provider's last
// webhook arrived.
type settings struct{ store hitl.Store }

var _ zoho.WebhookStore = settings{}

// zohoWebhookSetting names the SalesIQ webhook's setting.
const zohoWebhookSetting = "zoho.webhook"

func (s settings) LoadWebhook(ctx context.Context) (zoho.WebhookState, error) {
	var w zoho.WebhookState
	raw, err := s.store.Setting(ctx, zohoWebhookSetting)
	if err != nil || raw == nil {
		return w, err
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return w, fmt.Errorf("decode the zoho webhook setting: %w", err)
	}
	return w, nil
}

func (s settings) SaveWebhook(ctx context.Context, w zoho.WebhookState) error {
	raw, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return s.store.SaveSetting(ctx, zohoWebhookSetting, raw)
}

// WebhookSeen records when a webhook of provider was last accepted.
func (s settings) WebhookSeen(ctx context.Context, provider string, at time.Time) error {
	return s.store.SaveSetting(ctx, "webhook.seen."+provider, []byte(at.UTC().Format(time.RFC3339Nano)))
}

// LastWebhook returns when a webhook of provider was last accepted, zero if
// never.
func (s settings) LastWebhook(ctx context.Context, provider string) (time.Time, error) {
	raw, err := s.store.Setting(ctx, "webhook.seen."+provider)
	if err != nil || raw == nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, string(raw))
}
