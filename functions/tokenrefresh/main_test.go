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
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

func TestScheduledRunRenewsExpiringCustomerTokens(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	e.Handoff(t)
	work, err := app.NewTokenRefresh(e.Config, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	h := lambda.NewHandler(lambdarun.Scheduled(work))
	payload := apptest.Event(t, "tokenrefresh-schedule.json")

	before := e.LiveChat.Calls("token")
	if _, err := h.Invoke(t.Context(), payload); err != nil || e.LiveChat.Calls("token") != before {
		t.Fatalf("fresh token renewed: err %v, token calls %d → %d", err, before, e.LiveChat.Calls("token"))
	}
	e.Clock.Advance(7*time.Hour + 30*time.Minute)
	e.LiveChat.Advance(7*time.Hour + 30*time.Minute)
	if _, err := h.Invoke(t.Context(), payload); err != nil || e.LiveChat.Calls("token") != before+1 {
		t.Fatalf("expiring token: err %v, token calls %d → %d", err, before, e.LiveChat.Calls("token"))
	}
}
