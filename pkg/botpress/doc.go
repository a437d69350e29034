// Package botpress makes hitl-bridge the external service of Botpress's
// "Human in the Loop API" integration (plus/hitl-api): it reads what the
// integration sends to the five routes under the URL it is configured with
// (Routes, mounted by the app among pkg/httpapi's under /botpress/<token>/,
// on the narrow Bridge interface it declares), and its Sender calls the
// integration's webhook with agent messages, assignments and stops.
//
// What the integration sends, from its source (botpress/growth,
// integrations/hitl-api):
//
//   - createRemoteUser: the hitl createUser input (name, email, pictureUrl)
//     plus role "end-user". Botpress invents "<id>@<bot>.botpress.invalid"
//     when it has no email; such addresses, and any field we could not
//     use, are dropped rather than failing the handoff.
//   - createRemoteConversation: only {title, description}: the client parses
//     the startHitl input through a schema that strips the user id, the
//     message history and hitlSession. The session is therefore a deferred
//     one (hitl.Bridge.CreateDeferred): it opens at the end user's first
//     message. The contract's optional "messages" are kept as the
//     start of the transcript.
//   - botSendsMessage: our session id, our user id (or "BOT" for the bot's
//     own messages) and the Botpress message payload, which usually carries
//     its "type" and the Botpress user id; without "type" the type is read
//     from the payload's fields.
//   - closeRemoteTicket: only the Botpress conversation id, which the client
//     never gave us before. A session id in its place (a client that sends
//     remoteConversationId) stops that session; anything else is answered
//     200 and logged, and the session ends when the agent closes it or after
//     the idle timeout.
//
// Botpress sessions open with the bridge's default provider, or the one the
// URL names: <base>/botpress/<token>/<provider>.
package botpress
