package main

import (
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

func TestSampleWebhookEvents(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	sessionID, chatID := e.Handoff(t)
	chat, _ := e.LiveChat.Chat(chatID)
	w, err := app.NewWebhooks(e.IngressConfig(t), e.Options)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Bridge.Providers) != 0 {
		t.Fatalf("the webhooks function has provider clients: %v", w.Bridge.Providers)
	}
	h := lambda.NewHandler(apigw.New(w))

	steps := []struct {
		event string
		want  string // the event type the bot receives, "" for none
	}{
		{"webhooks-livechat-user-added.json", "hitl.assigned"},
		{"webhooks-livechat-incoming-message.json", "hitl.message"},
		{"webhooks-livechat-incoming-message.json", ""}, // a retried delivery
		{"webhooks-livechat-agent-note.json", ""},
		{"webhooks-livechat-incoming-file.json", "hitl.message"},
		{"webhooks-livechat-license-envelope.json", "hitl.message"},
		{"webhooks-livechat-chat-transferred.json", "hitl.queued"}, // the sample carries a queue
		{"webhooks-livechat-chat-deactivated.json", "hitl.stopped"},
	}
	for _, step := range steps {
		before := len(e.Bot.Events())
		if resp := apptest.Invoke(t, h, apptest.Event(t, step.event, "CHAT_DEMO", chatID, "THREAD_DEMO", chat.ThreadID)); resp.StatusCode != 200 {
			t.Fatalf("%s: %+v", step.event, resp)
		}
		got := e.Bot.Events()[before:]
		switch {
		case step.want == "" && len(got) != 0:
			t.Fatalf("%s: the bot received %+v", step.event, got)
		case step.want != "" && (len(got) != 1 || string(got[0].Type) != step.want || got[0].SessionID != sessionID):
			t.Fatalf("%s: the bot received %+v, want one %s", step.event, got, step.want)
		}
	}

	// The same deliveries with a wrong secret are refused and change nothing.
	before := len(e.Bot.Events())
	resp := apptest.Invoke(t, h, apptest.Event(t, "webhooks-livechat-incoming-message.json", "CHAT_DEMO", chatID, apptest.WebhookSecret, "forged"))
	if resp.StatusCode != 401 || len(e.Bot.Events()) != before {
		t.Fatalf("forged delivery: %d, %d new events", resp.StatusCode, len(e.Bot.Events())-before)
	}
}
