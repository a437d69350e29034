package app

import (
	"context"
	"sync"

	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

// zohoDocument is the Zoho token secret (a private file locally): the
// token at the top level, and the bridge's SalesIQ webhook and its public
// keys under "webhook", where the webhook verifier of every container
// reads them. Each save rewrites the document with the other part as read
// just before; both parts change rarely (the token every ~45 minutes under
// a lease, the keys at setup and rotation).
type zohoDocument struct {
	doc interface {
		Load(ctx context.Context, v any) error
		Save(ctx context.Context, v any) error
	}
	mu sync.Mutex // orders this process's read-modify-writes
}

// zohoFile is the document's layout.
type zohoFile struct {
	zoho.Token
	Webhook *zoho.WebhookState `json:"webhook,omitempty"`
}

var (
	_ zoho.TokenStore   = (*zohoDocument)(nil)
	_ zoho.WebhookStore = (*zohoDocument)(nil)
)

func (d *zohoDocument) load(ctx context.Context) (zohoFile, error) {
	var f zohoFile
	err := d.doc.Load(ctx, &f)
	return f, err
}

// Load returns the token.
func (d *zohoDocument) Load(ctx context.Context) (zoho.Token, error) {
	f, err := d.load(ctx)
	return f.Token, err
}

// Save replaces the token and keeps the webhook keys.
func (d *zohoDocument) Save(ctx context.Context, t zoho.Token) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.load(ctx)
	if err != nil {
		return err
	}
	f.Token = t
	return d.doc.Save(ctx, f)
}

// LoadWebhook returns the webhook and its keys.
func (d *zohoDocument) LoadWebhook(ctx context.Context) (zoho.WebhookState, error) {
	f, err := d.load(ctx)
	if err != nil || f.Webhook == nil {
		return zoho.WebhookState{}, err
	}
	return *f.Webhook, nil
}

// SaveWebhook replaces the webhook and its keys and keeps the token.
func (d *zohoDocument) SaveWebhook(ctx context.Context, s zoho.WebhookState) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.load(ctx)
	if err != nil {
		return err
	}
	f.Webhook = &s
	return d.doc.Save(ctx, f)
}
