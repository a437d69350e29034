// Package zoho is the Zoho SalesIQ provider: the data-centre table, the OAuth
// flow of an org client, a token manager that keeps one access token fresh
// across containers without exceeding Zoho's limits, a client of the visitor
// and operator REST APIs that opens, feeds and closes handoff conversations
// and tells whether the department's operators are available, and the
// verification and parsing of SalesIQ webhooks (assignments, messages,
// transfers, ends and ratings).
//
// Each end user is a SalesIQ visitor whose user_id is the end user's own id,
// so concurrent handoffs never share an identity. Every API call carries the
// integration's org access token; the token is minted only by Tokens, which
// refreshes it once at a time per container (single flight) and across
// containers (a lease), within Zoho's 10 tokens per 10 minutes counted
// across containers (ten slot leases), retrying failed token answers after
// a backoff of seconds.
//
// SalesIQ answers errors as {"error":{"code","message"}}, usually with HTTP
// 200: every answer is checked for an error body, whatever its status.
package zoho
