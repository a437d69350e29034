// Package dynamo is the DynamoDB hitl.Store: one table, on-demand billing.
//
// # Table schema (CreateTable; template.yaml must match)
//
// Keys pk (S, hash) and sk (S, range); TTL on expiresAt (unix seconds); three
// sparse global secondary indexes, gsi1 (gsi1pk, gsi1sk), gsi2 (gsi2pk,
// gsi2sk) and gsi3 (gsi3pk, gsi3sk), all with projection KEYS_ONLY, not
// ALL: the session item carries its outbox and is written by every Record
// and Ack, and with ALL every such write to an indexed session would be
// written again, in full, to the index.
// With KEYS_ONLY an index is written only when its keys change. The code
// reads nothing but keys from the indexes, so it also works, at that higher
// cost, with ALL.
//
// # Items
//
//	pk                       sk                 what
//	USER#<id>                USER               a user
//	SESSION#<id>             SESSION            a session, its visitor, outbox, recent event ids, lease and retry state;
//	                                            while pending, its title, description and transcript (JSON list)
//	SESSION#<id>             DEAD#<time>#<rand> events of one Bury, with the session's routing fields
//	CONV#<provider>#<conv>   CONV               provider conversation → the session's fields fixed once opened
//	IDEM#<key>               IDEM               idempotency key → session id
//	LEASE#<name>             LEASE              a named lease (AcquireLease)
//
// gsi1 holds due outboxes (gsi1pk OUTBOX, gsi1sk the due time) and dead
// letters (gsi1pk DEAD, gsi1sk the burial time); gsi2 holds open sessions
// with an expiring visitor token (gsi2pk VISITOR, gsi2sk the expiry); gsi3
// holds open sessions with an idle deadline (gsi3pk IDLE, gsi3sk the
// deadline: Botpress sessions). An item has one value per index key, which
// is why the idle deadline has an index of its own: a LiveChat session can
// be in all three at once. Times in sort keys and in compared attributes
// are fixed-width UTC strings, so string order is time order. Scheduled
// reads query only what is due.
//
// An outbox is due while it is not empty: when its lease expires, at its
// retry time after a failed delivery, or at once after Replay.
//
// # Calls per operation
//
//   - GetSession, GetUser, SessionByConversation, RetryState: one GetItem
//     (strongly consistent).
//   - Record: one UpdateItem. It appends the event (compact JSON) to the
//     outbox list and a 12-character digest of its id to the recent list,
//     takes the lease if it is free, and returns the new item; its condition
//     rejects closed sessions, duplicates and a full outbox, and a failed
//     condition returns the old item, which tells which.
//   - Ack: one UpdateItem when everything pending was delivered, on that
//     condition; if events were appended meanwhile, a second UpdateItem
//     written from the item the failed one returned; after a failed
//     delivery, a GetItem and an UpdateItem.
//   - Claim, SaveVisitor, AcquireLease, BindUser, UnbindUser,
//     AppendTranscript, ExtendIdle: one UpdateItem. CreateUser, and
//     CreateSession without a key: one PutItem. Record also reports the idle
//     deadline from the item it returns, so keeping a session alive costs a
//     write (ExtendIdle) only when half its timeout is used, not per message.
//   - CreateSession with a key, DeleteSession with a key: one
//     TransactWriteItems. Opened and Bury: a GetItem and one
//     TransactWriteItems. Replay: a Query, then one TransactWriteItems per
//     99 dead-letter items.
//   - DueOutboxes: one Query. VisitorsExpiring, IdleSessions, DeadLetters: a
//     Query and a BatchGetItem.
//
// A failed condition is an outcome (Applied false, ok false), not an error.
//
// The recent list keeps at least the last 100 ids. The Store remembers, for
// the leases it takes, how long the list was, and the Ack that releases the
// lease trims it in the same write.
//
// # Limits and expiry
//
// A session's outbox may hold 300 KiB of event JSON, keeping the item well
// under DynamoDB's 400 KB; past that (a long bot outage) Record fails with
// code rate_limited until deliveries resume, instead of failing on size
// (should DynamoDB refuse the size first, Record reports the same). A
// pending session's transcript holds at most hitl.MaxTranscriptBytes
// (64 KiB) of JSON and Opened removes it; nothing but the session's end is
// recorded while it is pending, so transcript and outbox never grow
// together.
//
// Every due outbox shares the gsi1 partition OUTBOX, whose writes (an
// outbox becoming due, or delivered) DynamoDB serves up to about 1,000 per
// second: some 500 delivered messages a second across all sessions. Shard
// gsi1pk (OUTBOX#0..n) and query each shard if an install needs more.
//
// Closed sessions, idempotency keys and dead letters expire 30 days after
// they close, are created, or die; conversation mappings a year after the
// session opened; named leases a day after they end. Users do not expire.
package dynamo
