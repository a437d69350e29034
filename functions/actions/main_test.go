package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

// function wires the actions function on e, as main does in AWS.
func function(t *testing.T, e *apptest.Env) lambda.Handler {
	t.Helper()
	h, err := app.NewActions(e.Config, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	return lambda.NewHandler(apigw.New(h))
}

func TestSampleEventsDriveAHandoff(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	h := function(t, e)

	if resp := apptest.Invoke(t, h, apptest.Event(t, "actions-healthz.json")); resp.StatusCode != 200 {
		t.Fatalf("healthz: %+v", resp)
	}
	resp := apptest.Invoke(t, h, apptest.Event(t, "actions-create-user.json"))
	var user struct{ UserID string }
	if resp.StatusCode != 201 || json.Unmarshal([]byte(resp.Body), &user) != nil {
		t.Fatalf("create user: %+v", resp)
	}
	resp = apptest.Invoke(t, h, apptest.Event(t, "actions-start-session.json", "usr_demo", user.UserID))
	var session struct{ SessionID, Status string }
	if resp.StatusCode != 201 || json.Unmarshal([]byte(resp.Body), &session) != nil || session.Status != "waiting" {
		t.Fatalf("start session: %+v", resp)
	}
	// The sample's Idempotency-Key makes a replay of the same event return the same session.
	again := apptest.Invoke(t, h, apptest.Event(t, "actions-start-session.json", "usr_demo", user.UserID))
	if again.Body != resp.Body || e.LiveChat.Calls("start_chat") != 1 {
		t.Fatalf("replayed start: %+v, %d chats", again, e.LiveChat.Calls("start_chat"))
	}
	ids := []string{"usr_demo", user.UserID, "ses_demo", session.SessionID}
	for _, step := range []struct {
		event  string
		status int
	}{
		{"actions-send-message.json", 202},
		{"actions-get-session.json", 200},
		{"actions-stop-session.json", 200},
		{"actions-stop-session.json", 200},
		{"actions-send-message.json", 409},
	} {
		if resp := apptest.Invoke(t, h, apptest.Event(t, step.event, ids...)); resp.StatusCode != step.status {
			t.Fatalf("%s: %d %s, want %d", step.event, resp.StatusCode, resp.Body, step.status)
		}
	}
	if got := e.Bot.Events(); len(got) != 1 || got[0].Type != "hitl.stopped" || got[0].Reason != "bot_stopped" {
		t.Fatalf("bot received %+v", got)
	}
}

func TestMalformedEventIsAClientError(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	h := function(t, e)
	payload := apptest.Event(t, "actions-create-user.json", `"isBase64Encoded": false`, `"isBase64Encoded": true`)
	if resp := apptest.Invoke(t, h, payload); resp.StatusCode != 400 {
		t.Fatalf("a body that is not base64 under isBase64Encoded: %+v", resp)
	}
}

func TestSampleBotpressEvents(t *testing.T) {
	e := apptest.NewBotpress(t, apptest.Dynamo(t))
	h := function(t, e.Env)
	var user, session struct{ ID string }
	resp := apptest.Invoke(t, h, apptest.Event(t, "actions-botpress-create-remote-user.json"))
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &user) != nil {
		t.Fatalf("createRemoteUser: %+v", resp)
	}
	resp = apptest.Invoke(t, h, apptest.Event(t, "actions-botpress-create-remote-conversation.json"))
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &session) != nil {
		t.Fatalf("createRemoteConversation: %+v", resp)
	}
	if e.LiveChat.Calls("start_chat") != 0 {
		t.Fatal("a chat was opened before the user's first message")
	}
	resp = apptest.Invoke(t, h, apptest.Event(t, "actions-botpress-bot-sends-message.json", "usr_demo", user.ID, "ses_demo", session.ID))
	if resp.StatusCode != 200 || e.LiveChat.Calls("start_chat") != 1 {
		t.Fatalf("first user message: %+v, %d chats", resp, e.LiveChat.Calls("start_chat"))
	}
	wrong := apptest.Event(t, "actions-botpress-create-remote-user.json", apptest.BotpressToken, "wrong-token-0123456789-abcdefghij")
	if resp := apptest.Invoke(t, h, wrong); resp.StatusCode != 404 {
		t.Fatalf("wrong token: %+v", resp)
	}
}
