package app

import (
	"context"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// settings keeps when each provider's last webhook arrived, as store
// settings every function reads.
type settings struct{ store hitl.Store }

// WebhookSeen records when a webhook of provider was last accepted.
func (s *settings) WebhookSeen(ctx context.Context, provider string, at time.Time) error {
	return s.store.SaveSetting(ctx, "webhook.seen."+provider, []byte(at.UTC().Format(time.RFC3339Nano)))
}

// LastWebhook returns when a webhook of provider was last accepted, zero if
// never.
func (s *settings) LastWebhook(ctx context.Context, provider string) (time.Time, error) {
	raw, err := s.store.Setting(ctx, "webhook.seen."+provider)
	if err != nil || raw == nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, string(raw))
}
