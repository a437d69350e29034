// Package dynamo is the DynamoDB hitl.Store: one table, on-demand billing.
//
// # Table schema (CreateTable; template.yaml must match)
//
// Keys pk (S, hash) and sk (S, range); TTL on expiresAt (unix seconds); three
// sparse global secondary indexes, gsi1 (gsi1pk, gsi1sk), gsi2 (gsi2pk,
// gsi2sk) and gsi3 (gsi3pk, gsi3sk), all with projection KEYS_ONLY: an index
// is written only when its keys change, and no event changes one. The code
// reads nothing but keys from the indexes, so it also works, at a higher
// cost, with ALL.
//
// # Items
//
//	pk                       sk                 what
//	USER#<id>                USER               a user
//	SESSION#<id>             SESSION            a session: its state, visitor (id, opaque credentials, their expiry),
//	                                            title; while pending, its transcript
//	OUTBOX#<0-3>             <id>               the session's delivery item: outbox, lease, retry state, the ids
//	                                            recorded since the last spill, the last event's time, the first
//	                                            reply and the idle deadline (while open)
//	SESSION#<id>             SPILL#<until>#<r>  event ids spilled from the delivery item, until they may be forgotten
//	SESSION#<id>             DEAD#<time>#<rand> events of one Bury, with the session's routing fields
//	CONV#<provider>#<conv>   CONV               provider conversation → the session's fields fixed once opened
//	IDEM#<key>               IDEM               idempotency key → session id
//	LEASE#<name>             LEASE              a named lease (AcquireLease)
//	HELD#<provider>#<conv>   HELD#<digest>      a provider event held for a conversation not yet known
//
// An event changes only the delivery item: a few hundred bytes, with short
// attribute names, so that recording an agent message and acknowledging
// its delivery are each one write unit (1 KB) whatever the conversation's
// length, and no index entry moves. A change of the session's state
// (assignment, queue, close) writes both items in one transaction. Closing
// copies the first reply and idle deadline into the session item, and the
// Ack that empties a closed session's outbox deletes its delivery item.
// GetSession reads both items and takes the later of the two times.
//
// Delivery items live in four partitions, OUTBOX#0 to OUTBOX#3 by a hash
// of the session id, rather than in an index: DueOutboxes queries the four
// and keeps, with a filter, the outboxes that are due (not empty, and the
// due time or, without one, the lease's end come). A sweep thus reads every
// open session's delivery item (about 0.3 KB each, eventually consistent:
// one read unit per some 25 open sessions), not the table: closed sessions
// have none once delivered. Each partition takes about 1,000 writes a
// second, some 2,000 agent messages a second in all.
//
// gsi1 holds dead letters (gsi1pk DEAD, gsi1sk the burial time); gsi2 holds
// open sessions whose visitor credentials expire (gsi2pk VISITOR, gsi2sk
// the expiry), on the session item; gsi3 holds open sessions with an idle
// deadline (gsi3pk IDLE, gsi3sk the deadline: deferred sessions), on the
// delivery item. Times in sort keys and in compared attributes are
// fixed-width UTC strings, so string order is time order. Scheduled reads
// query only what is due, but for the sweep above.
//
// # De-duplication
//
// Every event id is remembered for hitl.DedupeSpan whatever the number of
// events in between; dedupe.go tells how: the ids recorded since the last
// spill in the delivery item, where Record's condition rejects them, and
// spills of 24 ids, written by the lease holder's Ack, which each
// Store knows or reads once.
//
// # Calls per operation
//
//   - GetUser, SessionByConversation, RetryState: one GetItem (strongly
//     consistent). GetSession: one BatchGetItem of both items.
//   - Record of an event that changes no session state (an agent message):
//     one UpdateItem of the delivery item, which appends the event (compact
//     JSON) and its id's digest, takes the lease if it is free, and returns
//     the new item; its condition rejects closed sessions, duplicates, a full
//     outbox and spills the Store does not know, and a failed condition
//     returns the old item, which tells which. Record of a state change: one
//     TransactWriteItems and a GetItem of what it wrote; closing reads the
//     delivery item first too.
//   - Ack: one UpdateItem when everything pending was delivered, on that
//     condition (a DeleteItem for a closed session); if events were appended
//     meanwhile, a second write from the item the failed one returned; after
//     a failed delivery, a GetItem and a write. One Ack in 24 also puts
//     a spill item first.
//   - Claim, SaveVisitor, AcquireLease, UnbindUser, AppendTranscript,
//     ExtendIdle: one UpdateItem. BindUser: one UpdateItem and a GetItem.
//     CreateUser: one PutItem. Record also reports the idle deadline from
//     the item it returns, so keeping a session alive costs a write
//     (ExtendIdle) only when half its timeout is used, not per message.
//   - CreateSession, DeleteSession: one TransactWriteItems. Opened and
//     Bury: a GetItem and one TransactWriteItems. Replay: a Query, a
//     GetItem, then one TransactWriteItems per 99 dead-letter items.
//   - DueOutboxes: one Query per partition of delivery items.
//     VisitorsExpiring, IdleSessions, DeadLetters: a Query and a
//     BatchGetItem (VisitorsExpiring: of the session items alone, which
//     hold the visitor).
//
// A failed condition is an outcome (Applied false, ok false), not an error.
//
// # Limits and expiry
//
// A session's outbox may hold 300 KiB of event JSON, keeping the item well
// under DynamoDB's 400 KB; past that (a long bot outage) Record fails with
// code rate_limited until deliveries resume, instead of failing on size
// (should DynamoDB refuse the size first, Record reports the same). A
// deferred session's transcript holds at most hitl.MaxTranscriptBytes
// (64 KiB) of JSON and Opened removes it; nothing but the session's end is
// recorded while it is pending, so transcript and outbox never grow
// together.
//
// Closed sessions, idempotency keys and dead letters expire 30 days after
// they close, are created, or die; conversation mappings a year after the
// session opened; named leases a day after they end; spills when their ids
// may be forgotten. Users do not expire.
package dynamo
