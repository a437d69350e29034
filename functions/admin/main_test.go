package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin/page"
	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

func TestSampleEventsSignInToThePage(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	sessionID, _ := e.Handoff(t)
	a, err := app.NewAdmin(e.Config, e.Options, page.Render)
	if err != nil {
		t.Fatal(err)
	}
	h := lambda.NewHandler(apigw.New(a))

	resp := apptest.Invoke(t, h, apptest.Event(t, "admin-page.json"))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `id="login"`) || strings.Contains(resp.Body, sessionID) {
		t.Fatalf("signed out: %d %.200s", resp.StatusCode, resp.Body)
	}
	resp = apptest.Invoke(t, h, apptest.Event(t, "admin-sign-in.json"))
	if resp.StatusCode != 303 || len(resp.Cookies) != 1 || !strings.Contains(resp.Cookies[0], "Secure") {
		t.Fatalf("sign-in: %d, cookies %v", resp.StatusCode, resp.Cookies)
	}
	session, _, _ := strings.Cut(resp.Cookies[0], ";")
	resp = apptest.Invoke(t, h, apptest.Event(t, "admin-page.json", `"isBase64Encoded"`, `"cookies": [`+strconv.Quote(session)+`], "isBase64Encoded"`))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, sessionID) || !strings.Contains(resp.Body, `name="csrf"`) {
		t.Fatalf("signed in: %d %.200s", resp.StatusCode, resp.Body)
	}

	// The function serves the page alone: the bot API is the actions function's.
	if resp := apptest.Invoke(t, h, apptest.Event(t, "actions-healthz.json")); resp.StatusCode != 404 {
		t.Fatalf("healthz on the admin function: %+v", resp)
	}
}
