package livechat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// The cookies that carry a customer identity at the accounts server.
var identityCookies = []string{"__lc_cid", "__lc_cst"}

// grant runs the customer cookie grant. Without cookies the accounts server
// creates a new customer; with a visitor's cookies it issues a new token for
// that same customer.
func (c *Client) grant(ctx context.Context, cookies []string) (hitl.Visitor, error) {
	in := map[string]string{
		"grant_type":      "cookie",
		"client_id":       c.clientID,
		"response_type":   "token",
		"organization_id": c.organizationID,
	}
	if c.redirectURI != "" {
		in["redirect_uri"] = c.redirectURI
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return hitl.Visitor{}, fmt.Errorf("encode customer token request: %w", err)
	}
	cookieHeader := strings.Join(cookies, "; ")
	resp, body, err := c.api.Do(ctx, outbound.Request{
		Op: "customer_token",
		// A lost answer to a first grant would leave an orphan customer if
		// repeated; a refresh is harmless to repeat.
		ApplyOnce: len(cookies) == 0,
		Build: func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.accountsURL+"/v2/customer/token", bytes.NewReader(payload))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			if cookieHeader != "" {
				req.Header.Set("Cookie", cookieHeader)
			}
			return req, nil
		},
	})
	if err != nil {
		return hitl.Visitor{}, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		EntityID    string `json:"entity_id"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.EntityID == "" || tok.ExpiresIn <= 0 {
		return hitl.Visitor{}, fmt.Errorf("livechat customer_token: answer lacks access_token, entity_id or expires_in")
	}
	v := hitl.Visitor{
		ID:             tok.EntityID,
		Token:          tok.AccessToken,
		TokenExpiresAt: c.now().Add(time.Duration(tok.ExpiresIn) * time.Second),
		Cookies:        mergeCookies(cookies, resp.Cookies()),
	}
	if len(v.Cookies) != len(identityCookies) {
		return hitl.Visitor{}, fmt.Errorf("livechat customer_token: answer lacks the identity cookies")
	}
	return v, nil
}

// mergeCookies keeps the identity cookies as "name=value" pairs, taking
// new values the server set over the ones sent.
func mergeCookies(sent []string, set []*http.Cookie) []string {
	values := map[string]string{}
	for _, pair := range sent {
		if name, value, ok := strings.Cut(pair, "="); ok {
			values[strings.TrimSpace(name)] = value
		}
	}
	for _, ck := range set {
		if ck.Value != "" && ck.MaxAge >= 0 {
			values[ck.Name] = ck.Value
		}
	}
	var out []string
	for _, name := range identityCookies {
		if v, ok := values[name]; ok {
			out = append(out, name+"="+v)
		}
	}
	return out
}
