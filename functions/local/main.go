// Command local runs hitl-bridge as one process: every route of the actions
// and webhooks functions on one HTTP server, the embedded store, and the
// scheduled work in-process. With -doctor it runs the self-check and
// prints each problem with its fix. (The scripted demo is functions/demo.)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/local"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("local", flag.ContinueOnError)
	doctor := flags.Bool("doctor", false, "check the configured providers, webhooks, tokens and outbox, print each problem with its fix, and exit")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *doctor {
		return runDoctor(ctx, getenv, stdout, stderr)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	return serve(ctx, getenv, log)
}

// newServer bounds the time a client may take: slow or idle connections
// must not pile up (request bodies are at most 1 MiB).
func newServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// serve runs the bridge until ctx ends.
func serve(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
	if p := getenv("HITL_STORE_PATH"); p == "" {
		if err := os.MkdirAll(".hitl", 0o700); err != nil {
			return err
		}
	} else if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	a, c, closeStore, err := local.Load(getenv, log)
	if err != nil {
		return err
	}
	defer closeStore()
	srv := newServer(c.Listen, a.Handler())
	go a.RunScheduled(ctx, 30*time.Second)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("hitl-bridge listening", "addr", c.Listen, "store", c.StorePath, "providers", c.Providers())
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
