package main

import (
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/lambdarun"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

func TestScheduledRunDeliversWhatTheBotRefused(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	_, chatID := e.Handoff(t)
	e.Bot.SetDown(true)
	if status, err := e.LiveChat.AgentJoins(chatID, livechattest.Ann); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	e.Bot.SetDown(false)
	e.Clock.Advance(time.Minute)
	work, err := app.NewRedelivery(e.Config, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	h := lambda.NewHandler(lambdarun.Scheduled(work))
	if _, err := h.Invoke(t.Context(), apptest.Event(t, "redelivery-schedule.json")); err != nil {
		t.Fatal(err)
	}
	if got := e.Bot.Events(); len(got) != 1 || got[0].Type != "hitl.assigned" {
		t.Fatalf("bot received %+v", got)
	}
}
