// Command demo plays a scripted handoff per provider, all local and with no
// credentials: the bridge on the embedded store, the LiveChat and Zoho
// SalesIQ simulators the tests use, and a bot that checks every callback's
// signature; it prints what each side saw. `make demo` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	verbose := flags.Bool("v", false, "also print the bridge's log")
	if err := flags.Parse(args); err != nil {
		return err
	}
	var logs io.Writer
	if *verbose {
		logs = stderr
	}
	return runDemo(ctx, stdout, logs)
}
