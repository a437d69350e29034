// Package lambdarun is the entry point every Lambda function of
// functions/ shares: wire the function once, at cold start, then serve
// its events.
package lambdarun

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Run wires the function with load, with Lambda's logger, and serves its
// events with the handler made of what load returned. A function that
// cannot be wired exits with the error, which Lambda reports as an init
// failure.
func Run[T, H any](load func(context.Context, *slog.Logger) (T, error), handler func(T) H) {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procs(os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), runtime.NumCPU()))
	}
	v, err := load(context.Background(), lambdacontext.NewLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(handler(v))
}

// vCPUMB is the memory size at which Lambda gives a function one full
// vCPU; CPU time is proportional to memory.
const vCPUMB = 1769

// procs is the GOMAXPROCS for a function of memoryMB (Lambda's
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE) on a machine showing cpus: one per
// 1,769 MB or part of it, at most cpus. Lambda shows a sandbox two vCPUs
// or more whatever its share, so Go's default (one per vCPU shown)
// has idle threads spin looking for work and hand goroutines between
// threads on each network wait: CPU that uses up a 128 MB function's
// 128/1769 share of a vCPU and so lengthens its billed duration (a quarter
// of a warm webhook's CPU, measured with pkg/bench). Network waits need no
// P: calls still overlap.
func procs(memoryMB string, cpus int) int {
	mb, err := strconv.Atoi(memoryMB)
	if err != nil || mb <= 0 {
		return cpus
	}
	return min(cpus, max(1, (mb+vCPUMB-1)/vCPUMB))
}

// Scheduled is the handler of a function that EventBridge runs on a
// schedule: each event runs work.
func Scheduled(work func(context.Context) error) func(context.Context, events.EventBridgeEvent) error {
	return func(ctx context.Context, _ events.EventBridgeEvent) error { return work(ctx) }
}
