// Package hitl is the domain of hitl-bridge: end users, handoff sessions, the
// messages that cross between bot and agent, the events the bot receives, and
// the Bridge service that ties bot actions, live-agent providers, the store and
// delivery together.
//
// It imports neither AWS nor Lambda packages: adapters (store, providers,
// HTTP) depend on it, never the reverse.
package hitl
