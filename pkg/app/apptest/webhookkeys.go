package apptest

import (
	"context"

	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

var _ zoho.WebhookStore = (*MemoryTokens)(nil)

// LoadWebhook returns the saved webhook state.
func (m *MemoryTokens) LoadWebhook(context.Context) (zoho.WebhookState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.webhook, nil
}

// SaveWebhook keeps s.
func (m *MemoryTokens) SaveWebhook(_ context.Context, s zoho.WebhookState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.webhook = s
	return nil
}
