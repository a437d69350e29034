package zoho_test

import (
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

var regionHosts = []struct{ code, accounts, salesiq string }{
	{"us", "https://accounts.zoho.com", "https://salesiq.zoho.com"},
	{"eu", "https://accounts.zoho.eu", "https://salesiq.zoho.eu"},
	{"in", "https://accounts.zoho.in", "https://salesiq.zoho.in"},
	{"au", "https://accounts.zoho.com.au", "https://salesiq.zoho.com.au"},
	{"cn", "https://accounts.zoho.com.cn", "https://salesiq.zoho.com.cn"},
	{"jp", "https://accounts.zoho.jp", "https://salesiq.zoho.jp"},
	{"ca", "https://accounts.zohocloud.ca", "https://salesiq.zohocloud.ca"},
	{"sa", "https://accounts.zoho.sa", "https://salesiq.zoho.sa"},
	{"uk", "https://accounts.zoho.uk", "https://salesiq.zoho.uk"},
}

func TestLookupRegion(t *testing.T) {
	for _, tt := range regionHosts {
		t.Run(tt.code, func(t *testing.T) {
			r, err := zoho.LookupRegion(tt.code)
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != tt.code || r.AccountsURL != tt.accounts || r.SalesIQURL != tt.salesiq {
				t.Errorf("region = %+v", r)
			}
		})
	}
	if r, err := zoho.LookupRegion(" CA "); err != nil || r.Code != "ca" {
		t.Errorf("upper case: %+v, %v", r, err)
	}
	for _, code := range []string{"", "xx", "com", "ae"} {
		if _, err := zoho.LookupRegion(code); err == nil {
			t.Errorf("region %q accepted", code)
		}
	}
}

func TestCallbackAccountsURL(t *testing.T) {
	for _, tt := range regionHosts {
		got, err := zoho.CallbackAccountsURL(tt.code, tt.accounts+"/")
		if err != nil || got != tt.accounts {
			t.Errorf("%s: %q, %v", tt.code, got, err)
		}
	}
	refused := []struct{ name, location, server string }{
		{"foreign host", "us", "https://accounts.evil.example"},
		{"lookalike", "us", "https://accounts.zoho.com.evil.example"},
		{"plain http", "us", "http://accounts.zoho.com"},
		{"another region's server", "eu", "https://accounts.zoho.com"},
		{"unknown location", "mars", "https://accounts.zoho.com"},
		{"empty", "", ""},
	}
	for _, tt := range refused {
		if got, err := zoho.CallbackAccountsURL(tt.location, tt.server); err == nil {
			t.Errorf("%s: accepted as %q", tt.name, got)
		}
	}
}
