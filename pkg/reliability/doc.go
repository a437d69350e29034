// Package reliability proves that the bridge holds under faults, load,
// forgery and malformed input, and reports each proof as a figure.
//
// Its suites are tests; the package has no other code. Each test measures
// one or more figures of the table in figures_test.go, records them, and
// fails when a figure falls short of its target; TestMain prints the table
// when the run ends:
//
//	go test ./pkg/reliability                          # short form, part of make test
//	HITL_RELIABILITY=long go test -v -timeout 60m ./pkg/reliability   # make reliability
//
// The short form keeps every suite but shrinks the counts so that it stays
// within a CI budget; the long form uses the counts of the issue (10,000
// webhook events over 200 sessions, 1,000 events delivered three times each,
// and so on). Both run every suite against the embedded store and against
// DynamoDB on moto_server.
//
// Everything runs on loopback: the bridge of pkg/app/apptest with its
// LiveChat and Zoho SalesIQ simulators, a bot receiver that verifies every
// callback's signature, and a settable clock, so retry windows of hours
// pass without sleeping.
package reliability
