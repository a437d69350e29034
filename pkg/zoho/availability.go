package zoho

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

var _ hitl.AvailabilityChecker = (*Client)(nil)

// The operator list gives 20 operators a fetch, the next ones at index 2,
// 3, … (https://www.zoho.com/salesiq/help/developer-section/rest-api-operator-list.html);
// maxOperatorPages bounds one availability answer to 500 operators.
const (
	operatorsPerPage = 20
	maxOperatorPages = 25
)

// Availability counts the operators of the configured department who take
// chats now, from the operator list
// (https://www.zoho.com/salesiq/help/developer-section/rest-api-operator-list.html,
// GET /api/v2/{screen}/operators, scope SalesIQ.operators.READ): an operator
// counts when its status_code is 1 (Available; 3 is Busy), its departments
// include the configured one, and it is not marked chat-disabled, disabled
// or deleted (is_chat_enabled, is_enabled, is_deleted, "true"/"false" as
// the page shows them, or booleans). SalesIQ documents no queue length nor
// an estimate of the wait.
func (c *Client) Availability(ctx context.Context) (hitl.Availability, error) {
	seen := map[string]bool{}
	available := 0
	for index := 1; index <= maxOperatorPages; index++ {
		var out struct {
			Data []json.RawMessage `json:"data"`
		}
		err := c.call(ctx, request{
			op: "operators", method: http.MethodGet,
			path: "/api/v2/" + c.screen + "/operators?index=" + strconv.Itoa(index),
		}, &out)
		if err != nil {
			return hitl.Availability{}, publicError("list zoho operators", err)
		}
		fresh := 0
		for i, raw := range out.Data {
			var o map[string]json.RawMessage
			if json.Unmarshal(raw, &o) != nil {
				c.log.LogAttrs(ctx, slog.LevelWarn, "zoho operator entry skipped", slog.Int("index", index), slog.Int("entry", i))
				continue
			}
			id := idAnswer{Data: o}.id("id")
			if id == "" || seen[id] {
				continue
			}
			seen[id], fresh = true, fresh+1
			if c.takesChats(o) {
				available++
			}
		}
		// A short page is the last; a page of operators already seen means
		// SalesIQ ignored the index.
		if len(out.Data) < operatorsPerPage || fresh == 0 {
			break
		}
	}
	return hitl.Availability{Accepting: available > 0, Agents: available}, nil
}

// takesChats reads one operator of the list.
func (c *Client) takesChats(o map[string]json.RawMessage) bool {
	a := idAnswer{Data: o}
	if a.id("status_code") != "1" {
		return false
	}
	for key, bad := range map[string]bool{"is_chat_enabled": false, "is_enabled": false, "is_deleted": true} {
		if v, ok := flag(o[key]); ok && v == bad {
			return false
		}
	}
	var departments []flexString
	if json.Unmarshal(o["departments"], &departments) != nil {
		return false
	}
	return slices.ContainsFunc(departments, func(d flexString) bool { return strings.TrimSpace(string(d)) == c.departmentID })
}

// flag reads a boolean sent as true/false or "true"/"false"; ok is false
// for anything else, null included.
func flag(raw json.RawMessage) (value, ok bool) {
	if string(raw) == "null" {
		return false, false
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if v, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
			return v, true
		}
	}
	return false, false
}
