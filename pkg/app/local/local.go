// Package local wires the App of the local process (functions/local): the
// embedded store and private files instead of DynamoDB and Secrets
// Manager. It is apart from package app so that no Lambda binary links the
// embedded store.
package local

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin/page"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/secrets"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
)

// Load wires the App: settings from getenv, the config secret from
// HITL_SECRET_JSON, the embedded store at HITL_STORE_PATH, the documents
// platforms keep (the Zoho token and OAuth state key) in 0600 files
// <name>.json beside it. The returned function
// closes the store.
func Load(getenv func(string) string, log *slog.Logger) (*app.App, config.Config, func() error, error) {
	c, err := config.Env(getenv, app.Integrations())
	if err != nil {
		return nil, c, nil, fmt.Errorf("invalid environment:\n%w", err)
	}
	if getenv("HITL_SECRET_JSON") == "" {
		return nil, c, nil, fmt.Errorf("HITL_SECRET_JSON is required: the config secret document (see README)")
	}
	if c.Secret, err = config.ParseSecret([]byte(getenv("HITL_SECRET_JSON"))); err != nil {
		return nil, c, nil, err
	}
	if err := c.Validate(); err != nil { // before the store file is created
		return nil, c, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	st, err := bolt.Open(c.StorePath)
	if err != nil {
		return nil, c, nil, err
	}
	dir := filepath.Dir(c.StorePath)
	a, err := app.New(c, app.Options{
		Store: st, Log: log,
		Documents: func(name, _ string) integration.Document {
			return secrets.File{Path: filepath.Join(dir, name+".json")}
		},
	})
	if err != nil {
		st.Close()
		return nil, c, nil, err
	}
	a.Admin.ServePage(page.Render)
	return a, c, st.Close, nil
}
