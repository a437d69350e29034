// Package delivery gets events to the bot: signed HTTP callbacks, and the
// Dispatcher that drains each session's outbox in order, retries with
// backoff while the bot is down, and dead-letters what it could not deliver
// within the retry window.
package delivery
