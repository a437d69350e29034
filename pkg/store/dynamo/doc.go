// Package dynamo is the DynamoDB hitl.Store: one table, on-demand billing.
//
// # Table schema (CreateTable; template.yaml must match)
//
// Keys pk (S, hash) and sk (S, range); TTL on expiresAt (unix seconds); two
// sparse global secondary indexes, gsi1 (gsi1pk, gsi1sk) and gsi2 (gsi2pk,
// gsi2sk), both with projection KEYS_ONLY, not ALL: the session item carries
// its outbox and is written by every Record and Ack, and with ALL every such
// write to an indexed session would be written again, in full, to the index.
// With KEYS_ONLY an index is written only when its keys change. The code
// reads nothing but keys from the indexes, so it also works, at that higher
// cost, with ALL.
//
// # Items
//
//	pk                       sk                 what
//	USER#<id>                USER               a user
//	SESSION#<id>             SESSION            a session, its visitor, outbox, recent event ids, lease and retry state
//	SESSION#<id>             DEAD#<time>#<rand> events of one Bury, with the session's routing fields
//	CONV#<provider>#<conv>   CONV               provider conversation → the session's fields fixed once opened
//	IDEM#<key>               IDEM               idempotency key → session id
//	LEASE#<name>             LEASE              a named lease (AcquireLease)
//
// gsi1 holds due outboxes (gsi1pk OUTBOX, gsi1sk the due time) and dead
// letters (gsi1pk DEAD, gsi1sk the burial time); gsi2 holds open sessions
// with an expiring visitor token (gsi2pk VISITOR, gsi2sk the expiry). Times
// in sort keys and in compared attributes are fixed-width UTC strings, so
// string order is time order. Scheduled reads query only what is due.
//
// An outbox is due while it is not empty: when its lease expires, at its
// retry time after a failed delivery, or at once after Replay.
//
// # Calls per operation
//
// GetSession, GetUser, SessionByConversation: one GetItem (strongly
// consistent). Record: one UpdateItem that appends the event (compact JSON)
// to the outbox list and a 12-character digest of its id to the recent list,
// takes the lease if it is free, and returns the item; its condition rejects
// closed sessions and duplicates. Ack: one UpdateItem when everything pending
// was delivered, conditioned on the outbox size; otherwise (events appended
// meanwhile, or a retry) a GetItem and an UpdateItem. Claim, SaveVisitor,
// AcquireLease: one UpdateItem. CreateSession with a key, Opened (after a
// GetItem), DeleteSession with a key, Bury (after a GetItem), Replay (after a
// Query): one TransactWriteItems. DueOutboxes: one Query. VisitorsExpiring,
// DeadLetters: a Query and a BatchGetItem. Failed conditions are outcomes
// (Applied false, ok false), not errors.
//
// The recent list keeps at least the last 100 ids. The Store remembers, for
// the leases it takes, how long the list was, and the Ack that releases the
// lease trims it in the same write.
//
// # Limits and expiry
//
// A session's outbox may hold 300 KiB of event JSON, keeping the item well
// under DynamoDB's 400 KB; past that (a long bot outage) Record fails with
// code rate_limited until deliveries resume, instead of failing on size.
//
// Closed sessions, idempotency keys and dead letters expire 30 days after
// they close, are created, or die; conversation mappings a year after the
// session opened; named leases a day after they end. Users do not expire.
package dynamo
