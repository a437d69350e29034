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

// customer is a LiveChat customer as the client acts as one: its id, its
// token and the token's expiry, and the identity cookies that renew it.
type customer struct {
	ID        string
	Token     string
	ExpiresAt time.Time
	Cookies   []string
}

// credentials are the secrets of a customer, as LiveChat keeps them in a
// hitl.Visitor's opaque Credentials: JSON, the expiry being the visitor's
// CredentialsExpireAt. The stores convert sessions saved before
// credentials were opaque into this same layout: keep its field names.
type credentials struct {
	Token   string   `json:"token"`
	Cookies []string `json:"cookies,omitempty"`
}

// customerOf reads the customer a visitor holds; a visitor without
// credentials (none created yet) is a customer without a token.
func customerOf(v hitl.Visitor) (customer, error) {
	var creds credentials
	if len(v.Credentials) > 0 && json.Unmarshal(v.Credentials, &creds) != nil {
		// The decoder's message may quote the bytes: it is left out.
		return customer{}, hitl.Errorf(hitl.CodeInternal, "the credentials kept for LiveChat customer %s are not LiveChat's", v.ID)
	}
	return customer{ID: v.ID, Token: creds.Token, ExpiresAt: v.CredentialsExpireAt, Cookies: creds.Cookies}, nil
}

// visitor is the customer as the bridge keeps it.
func (c customer) visitor() hitl.Visitor {
	// Strings only: encoding cannot fail.
	creds, _ := json.Marshal(credentials{Token: c.Token, Cookies: c.Cookies})
	return hitl.Visitor{ID: c.ID, Credentials: creds, CredentialsExpireAt: c.ExpiresAt}
}

// grant runs the customer cookie grant. Without cookies the accounts server
// creates a new customer; with a visitor's cookies it issues a new token for
// that same customer.
func (c *Client) grant(ctx context.Context, cookies []string) (customer, error) {
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
		return customer{}, fmt.Errorf("encode customer token request: %w", err)
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
		return customer{}, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		EntityID    string `json:"entity_id"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.EntityID == "" || tok.ExpiresIn <= 0 {
		return customer{}, fmt.Errorf("livechat customer_token: answer lacks access_token, entity_id or expires_in")
	}
	cust := customer{
		ID:        tok.EntityID,
		Token:     tok.AccessToken,
		ExpiresAt: c.now().Add(time.Duration(tok.ExpiresIn) * time.Second),
		Cookies:   mergeCookies(cookies, resp.Cookies()),
	}
	if len(cust.Cookies) != len(identityCookies) {
		return customer{}, fmt.Errorf("livechat customer_token: answer lacks the identity cookies")
	}
	return cust, nil
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
