package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/local"
	"github.com/hitl-bridge/hitl-bridge/pkg/health"
)

// runDoctor runs the self-check of GET /v1/admin/status against the
// configured providers and prints, per provider, the verdict and each
// problem with its fix. It fails when a check fails. It needs the store,
// so it runs while the local bridge is stopped (a running one answers
// GET /v1/admin/status itself).
func runDoctor(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, c, closeStore, err := local.Load(getenv, log)
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("the store is in use by a running bridge: ask it instead (curl -H 'Authorization: Bearer <adminApiKey>' http://%s/v1/admin/status)", c.Listen)
	}
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st := a.Status(ctx, "")
	if st.PublicURL == "" {
		fmt.Fprintln(stdout, "PUBLIC_URL is not set: the webhook checks cannot tell where webhooks must go.")
	}
	for _, r := range append(st.Providers, st.Bridge) {
		fmt.Fprintf(stdout, "%s: %s\n", r.Name, r.Verdict)
		for _, ch := range r.Checks {
			fmt.Fprintf(stdout, "  [%s] %s: %s\n", ch.Status, ch.Name, ch.Detail)
			if ch.Fix != "" && ch.Status != health.OK {
				fmt.Fprintf(stdout, "      fix: %s\n", ch.Fix)
			}
		}
	}
	fmt.Fprintf(stdout, "overall: %s\n", st.Verdict)
	if st.Verdict == health.Fail {
		return errors.New("doctor: some checks failed (see the fixes above)")
	}
	return nil
}
