// Package livechat is the LiveChat provider: a client of the Agent and
// Customer Chat Web APIs (v3.6) that opens, feeds and closes handoff chats
// as the end user, and the verification and parsing of LiveChat webhooks.
//
// Each end user is a LiveChat customer created through the cookie grant; the
// customer's token expires after 8 hours and is renewed with the identity
// cookies; token and cookies are kept as the hitl.Visitor's opaque
// credentials, which this package alone encodes and reads. Chats are started and closed with the
// integration's personal access token. Bot messages are sent as a LiveChat
// bot when one is configured (Config.BotID), with the bot's own token.
//
// Every event this package posts carries a custom_id starting with
// "hitl-bridge:", so their webhook echoes are recognised and dropped.
package livechat
