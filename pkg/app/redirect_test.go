package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// A bot endpoint that answers with a redirect has not accepted the event:
// the redirect's target (here a service on loopback) receives nothing, and
// the event stays in the outbox until the endpoint accepts it.
func TestARedirectingBotGetsTheEventLaterAndItsTargetNothing(t *testing.T) {
	endpoint := simcore.NewRedirect(t, http.StatusTemporaryRedirect)
	e := apptest.New(t, apptest.Bolt(t), func(c *config.Config) { c.BotCallbackURL = endpoint.URL + "/hitl" })
	_, chatID := e.Handoff(t)
	simcore.Delivered(t)(e.LiveChat.AgentJoins(chatID, livechattest.Ann))
	simcore.Delivered(t)(e.LiveChat.AgentSays(chatID, "Hi Ada"))
	if n := endpoint.Followed(); n != 0 || len(e.Bot.Events()) != 0 {
		t.Fatalf("redirect followed: target got %d requests, bot %d events", n, len(e.Bot.Events()))
	}

	// The endpoint now answers itself: the outbox's retry delivers both.
	endpoint.Serve(e.Bot)
	e.Clock.Advance(time.Hour)
	if err := e.App.Redeliver(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := eventTypes(e.Bot.Events()); len(got) != 2 || got[0] != "hitl.assigned" || got[1] != "hitl.message" {
		t.Fatalf("after the retry the bot got %v", got)
	}
	if n := endpoint.Followed(); n != 0 {
		t.Fatalf("the redirect target received %d requests", n)
	}
}
