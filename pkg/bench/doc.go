// Package bench measures hitl-bridge. `make bench` prints the performance
// table, each figure with its target (a missed one reads MISSING), and
// writes it to .bench/ at the top of the repository (git-ignored):
// latest.json, a time-stamped copy, latest.md (the table in Markdown, for
// the README) and logs/ (every function's output). The next run prints the
// previous run's values beside its own.
//
// The table is made by TestBenchTable, behind the build tag bench so that
// `make test` never runs it and no test depends on the speed of the
// machine:
//
//	go test -tags bench -run '^TestBenchTable$' -count=1 -timeout 30m -v ./pkg/bench
//
// It needs moto_server on PATH and takes twenty to twenty-five minutes on two
// cores; HITL_BENCH_QUICK=1 runs everything small in about two minutes, to
// check the harness (its figures are not comparable and go to
// latest-quick.json).
//
// Every per-provider figure is taken for LiveChat and for Zoho SalesIQ
// (providers, provider_test.go), each in its own section, except the
// scheduled run on closed sessions, whose due work is visitor tokens to
// renew (LiveChat's alone). Zoho's agent messages are
// conversation.operator.replied deliveries signed with the simulator's
// key; its functions find the access token setup leaves in a secret of
// their own on moto.
//
// The time figures (cold starts, the local server's latency and
// throughput) are measured three times: the table shows each one's median
// run and, in brackets, the lowest and highest (latest.json keeps runs,
// min and max). Counts and sizes are exact and taken once.
//
// What it does:
//
//   - builds every function of the Makefile's FUNCTIONS twice: for
//     linux/arm64 exactly as the Makefile does (the binary size figure)
//     and for the host (everything it runs), and a hello-world
//     aws-lambda-go function (internal/hello);
//   - starts moto_server behind a counting proxy, and the LiveChat and
//     Zoho SalesIQ simulators and the bot receiver of apptest; the
//     functions reach them through AWS_ENDPOINT_URL and their usual
//     settings;
//   - starts each binary as Lambda does, against a small Lambda runtime API
//     emulator, with its first event queued: cold start to the first
//     answer, as a ratio to hello-world started the same way;
//   - sends each function 10,000 events (after one per conversation, to
//     warm it), counting AWS calls at the proxy and bot and provider calls
//     at the simulators, and reading the process's VmHWM; the operator
//     page's function (admin), no hot path, only starts cold;
//   - runs the scheduled functions once on a table of 10,000 closed
//     sessions with 10 items due, counting the items read;
//   - measures the local server's HTTP path (App.Handler on loopback) on
//     the embedded store and on moto, and a net/http JSON echo server;
//   - estimates the DynamoDB capacity units of each message from the sizes
//     of the items written (moto's ConsumedCapacity is a constant), and
//     prices a million messages.
//
// moto_server takes some 20 ms for one of the store's updates, so the long
// runs use a second moto_server, side by side with the first, and the
// table of closed sessions a third.
//
// The Go benchmarks of this package (webhook verification and parsing, the
// store's hot paths on bbolt and on DynamoDB through moto) need no tag and
// compare across runs with benchstat:
//
//	go test -run '^$' -bench . -count 10 ./pkg/... > new.txt
//	benchstat old.txt new.txt
//
// Measuring another platform is adding a provider to providers
// (provider_test.go). The webhook benchmarks cover both platforms.
package bench
