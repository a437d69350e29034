package livechattest

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// The Configuration API's webhook actions and the app's installation
// state, as https://platform.text.com/docs/management/configuration-api#webhooks
// documents them: registrations per owner client id, at most three per
// action; list_webhooks returns them without their secret_key; license
// webhooks are enabled automatically while the app is installed on the
// license (https://platform.text.com/docs/guides/console-guides/chat-webhooks
// — Private installation), disable_license_webhooks turns them off even
// across reinstalls, and enable_license_webhooks undoes that. get_group is
// https://platform.text.com/docs/management/configuration-api#get-group, and
// the agent action list_chats
// https://platform.text.com/docs/messaging/agent-chat-api#list-chats.
// Authentication is the Agent API's (Basic PAT); a scope missing from the
// token set with SetScopes is answered 403 authorization, as the
// Configuration API's error list (#errors) has it.

// Registration is a registered webhook, secret included, as the simulator
// keeps it.
type Registration struct {
	ID, Action, URL, SecretKey, Description, Type, OwnerClientID string
	Filters                                                      map[string]any
}

// configState is the Configuration API's state; zero is an app without
// registrations, not installed. Every group the chats use exists unless
// RemoveGroup deleted it, as start_chat accepts any group here.
type configState struct {
	seq           int
	webhooks      []Registration
	installed     bool
	disabled      bool
	scopes        []string // nil: every scope
	removedGroups map[int]bool
}

// actionScopes are the scopes each action needs, from its method's
// "Required scopes" row.
var actionScopes = map[string]string{
	"register_webhook":           "webhooks.configuration:rw",
	"list_webhooks":              "webhooks.configuration:rw",
	"unregister_webhook":         "webhooks.configuration:rw",
	"get_license_webhooks_state": "webhooks.state:ro",
	"enable_license_webhooks":    "webhooks.state:rw",
	"disable_license_webhooks":   "webhooks.state:rw",
	"get_group":                  "groups--all:ro",
	"list_chats":                 "chats--all:ro",
}

// maxPerAction is "up to three webhooks for every action".
const maxPerAction = 3

// SetScopes limits the personal access token to scopes; with none, it has
// every scope. A :rw scope includes its :ro.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.scopes = scopes
}

// InstallApp installs the app on the license (Private installation), which
// enables its license webhooks.
func (s *Server) InstallApp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.installed = true
}

// UninstallApp removes the app from the license.
func (s *Server) UninstallApp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.installed = false
}

// RemoveGroup deletes a group (not group 0, which LiveChat keeps).
func (s *Server) RemoveGroup(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.removedGroups == nil {
		s.cfg.removedGroups = map[int]bool{}
	}
	s.cfg.removedGroups[id] = id != 0
}

// Webhooks returns the registrations, oldest first.
func (s *Server) Webhooks() []Registration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cfg.webhooks)
}

// DeleteWebhook removes a registration, as deleting it in the Developer
// Console does.
func (s *Server) DeleteWebhook(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.webhooks = slices.DeleteFunc(s.cfg.webhooks, func(w Registration) bool { return w.ID == id })
}

// WebhooksEnabled reports whether LiveChat would send the app's license
// webhooks now.
func (s *Server) WebhooksEnabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.installed && !s.cfg.disabled
}

func (s *Server) hasScope(action string) bool {
	need := actionScopes[action]
	if s.cfg.scopes == nil || need == "" {
		return true
	}
	base, _, _ := strings.Cut(need, ":")
	return slices.ContainsFunc(s.cfg.scopes, func(have string) bool {
		return have == need || have == base+":rw"
	})
}

// handleConfiguration serves POST /v3.6/configuration/action/{action}.
func (s *Server) handleConfiguration(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	action := r.PathValue("action")
	if err := s.fault("configuration", action); err != nil {
		writeError(w, err)
		return
	}
	if r.Header.Get("Authorization") != "Basic "+s.AgentToken() {
		writeError(w, errorf(http.StatusUnauthorized, "authentication", "Invalid access token"))
		return
	}
	switch action {
	case "get_agent", "create_bot", "issue_bot_token":
		s.agentConfiguration(w, r, action)
		return
	}
	if _, known := actionScopes[action]; !known || action == "list_chats" {
		writeError(w, errorf(http.StatusNotFound, "not_found", "Unknown action %s", action))
		return
	}
	if !s.hasScope(action) {
		writeError(w, errorf(http.StatusForbidden, "authorization", "Scope %s is required", actionScopes[action]))
		return
	}
	var in struct {
		ID            json.RawMessage `json:"id"`
		Action        string          `json:"action"`
		SecretKey     string          `json:"secret_key"`
		URL           string          `json:"url"`
		Description   string          `json:"description"`
		Filters       map[string]any  `json:"filters"`
		OwnerClientID string          `json:"owner_client_id"`
		Type          string          `json:"type"`
	}
	if e := decodeBody(r, &in); e != nil {
		writeError(w, e)
		return
	}
	if action != "get_group" && in.OwnerClientID != s.opts.ClientID {
		writeError(w, errorf(http.StatusBadRequest, "validation", "owner_client_id must be a client id owned by your organization"))
		return
	}
	var out any = struct{}{}
	var e *apiError
	switch action {
	case "register_webhook":
		out, e = s.registerWebhook(in.Action, in.SecretKey, in.URL, in.Description, in.Type, in.OwnerClientID, in.Filters)
	case "list_webhooks":
		out = s.listWebhooks(in.OwnerClientID)
	case "unregister_webhook":
		var id string
		_ = json.Unmarshal(in.ID, &id)
		n := len(s.cfg.webhooks)
		s.cfg.webhooks = slices.DeleteFunc(s.cfg.webhooks, func(w Registration) bool {
			return id != "" && w.ID == id && w.OwnerClientID == in.OwnerClientID
		})
		if len(s.cfg.webhooks) == n {
			e = errorf(http.StatusNotFound, "not_found", "Webhook not found")
		}
	case "get_license_webhooks_state":
		out = map[string]bool{"license_webhooks_enabled": s.cfg.installed && !s.cfg.disabled}
	case "enable_license_webhooks":
		s.cfg.disabled = false
	case "disable_license_webhooks":
		s.cfg.disabled = true
	case "get_group":
		out, e = s.getGroup(in.ID)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) registerWebhook(action, secret, url, description, typ, owner string, filters map[string]any) (any, *apiError) {
	switch {
	case action == "" || secret == "" || url == "":
		return nil, errorf(http.StatusBadRequest, "validation", "action, secret_key and url are required")
	case len(url) > 500:
		return nil, errorf(http.StatusBadRequest, "validation", "url is longer than 500 characters")
	case typ != "license" && typ != "bot":
		return nil, errorf(http.StatusBadRequest, "validation", "type must be bot or license")
	}
	if _, ok := filters["author_type"]; ok && action != "incoming_event" && action != "event_updated" {
		return nil, errorf(http.StatusBadRequest, "validation", "filters.author_type is allowed only for incoming_event and event_updated")
	}
	n := 0
	for _, w := range s.cfg.webhooks {
		if w.OwnerClientID == owner && w.Action == action {
			n++
		}
	}
	if n >= maxPerAction {
		return nil, errorf(http.StatusBadRequest, "limit_reached", "Limit of webhooks for action %s reached", action)
	}
	s.cfg.seq++
	id := "wh" + strconv.Itoa(s.cfg.seq) + simcore.RandomHex(8)
	s.cfg.webhooks = append(s.cfg.webhooks, Registration{
		ID: id, Action: action, URL: url, SecretKey: secret, Description: description,
		Type: typ, OwnerClientID: owner, Filters: filters,
	})
	return map[string]string{"id": id}, nil
}

func (s *Server) listWebhooks(owner string) []map[string]any {
	out := []map[string]any{}
	for _, w := range s.cfg.webhooks {
		if w.OwnerClientID != owner {
			continue
		}
		m := map[string]any{"id": w.ID, "url": w.URL, "description": w.Description, "action": w.Action,
			"owner_client_id": w.OwnerClientID, "type": w.Type}
		if len(w.Filters) > 0 {
			m["filters"] = w.Filters
		}
		out = append(out, m)
	}
	return out
}

func (s *Server) getGroup(raw json.RawMessage) (any, *apiError) {
	var id *int
	if json.Unmarshal(raw, &id) != nil || id == nil {
		return nil, errorf(http.StatusBadRequest, "validation", "id is required")
	}
	name := "General"
	if *id != 0 {
		name = "Group " + strconv.Itoa(*id)
	}
	if s.cfg.removedGroups[*id] {
		return nil, errorf(http.StatusNotFound, "not_found", "Group not found")
	}
	return map[string]any{"id": *id, "name": name, "language_code": "en", "routing_status": "accepting_chats"}, nil
}

// agentListChats is the agent action list_chats: the chats' summaries.
// Callers hold s.mu.
func (s *Server) agentListChats() (any, *apiError) {
	if !s.hasScope("list_chats") {
		return nil, errorf(http.StatusForbidden, "authorization", "Scope %s is required", actionScopes["list_chats"])
	}
	summaries := []map[string]any{}
	ids := make([]string, 0, len(s.chats))
	for id := range s.chats {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := s.chats[id]
		summaries = append(summaries, map[string]any{
			"id":                  c.ID,
			"last_thread_summary": map[string]any{"id": c.ThreadID, "active": c.Active},
		})
	}
	return map[string]any{"chats_summary": summaries, "found_chats": len(summaries)}, nil
}
