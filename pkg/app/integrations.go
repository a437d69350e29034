package app

import (
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

// Integrations are the live-agent platforms the bridge is built with, in
// the order configuration errors, the self-check and setup list them. A
// new platform is one more entry here (see the README, "Adding a
// platform").
func Integrations() []integration.Integration {
	return []integration.Integration{livechat.Integration(), zoho.Integration()}
}
