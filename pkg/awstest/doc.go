// Package awstest runs the AWS services the integration tests need on the
// local machine: one moto_server per test binary, and SDK clients pointed at
// it with static credentials. Counter counts the AWS calls a client makes, for
// tests and benchmarks that assert on call counts.
//
// A test that calls Endpoint is skipped when moto_server is not on PATH,
// unless CI=true, where it fails instead.
package awstest
