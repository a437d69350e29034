package livechat

import "github.com/hitl-bridge/hitl-bridge/pkg/hitl"

// Credentials returns the customer token and identity cookies that v's
// opaque credentials hold.
func Credentials(v hitl.Visitor) (token string, cookies []string, err error) {
	c, err := customerOf(v)
	return c.Token, c.Cookies, err
}

// WithCredentials returns v holding token and cookies.
func WithCredentials(v hitl.Visitor, token string, cookies []string) hitl.Visitor {
	return customer{ID: v.ID, Token: token, ExpiresAt: v.CredentialsExpireAt, Cookies: cookies}.visitor()
}
