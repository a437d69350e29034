package zoho

import (
	"fmt"
	"strings"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Region is a Zoho data centre: the accounts server that issues tokens and
// the SalesIQ server that holds the portal.
type Region struct {
	Code        string // as ZOHO_REGION and the OAuth redirect's location
	AccountsURL string
	SalesIQURL  string
}

// regions lists every data centre SalesIQ runs in. US, EU, IN, AU, CN and JP
// are in SalesIQ's REST API server table; CA and SA follow Zoho's published
// hosts for those centres (zohocloud.ca, zoho.sa); UK follows the zoho.uk
// hosts other Zoho products publish for it (ZOHO_SALESIQ_URL overrides it).
var regions = map[string]Region{
	"us": {"us", "https://accounts.zoho.com", "https://salesiq.zoho.com"},
	"eu": {"eu", "https://accounts.zoho.eu", "https://salesiq.zoho.eu"},
	"in": {"in", "https://accounts.zoho.in", "https://salesiq.zoho.in"},
	"au": {"au", "https://accounts.zoho.com.au", "https://salesiq.zoho.com.au"},
	"cn": {"cn", "https://accounts.zoho.com.cn", "https://salesiq.zoho.com.cn"},
	"jp": {"jp", "https://accounts.zoho.jp", "https://salesiq.zoho.jp"},
	"ca": {"ca", "https://accounts.zohocloud.ca", "https://salesiq.zohocloud.ca"},
	"sa": {"sa", "https://accounts.zoho.sa", "https://salesiq.zoho.sa"},
	"uk": {"uk", "https://accounts.zoho.uk", "https://salesiq.zoho.uk"},
}

// LookupRegion returns the data centre named code (us, eu, in, au, cn, jp,
// ca, sa, uk). An unknown code is an error: a wrong default would send
// credentials and chats to another country's servers.
func LookupRegion(code string) (Region, error) {
	r, ok := regions[strings.ToLower(strings.TrimSpace(code))]
	if !ok {
		return Region{}, fmt.Errorf("unknown Zoho region %q: want one of us, eu, in, au, cn, jp, ca, sa, uk", code)
	}
	return r, nil
}

// serverURL is the base URL of one of Zoho's servers in the named region
// (pick chooses which), or override when given (simulators). It returns
// the problems with either; what names the server in them.
func serverURL(region, override, what string, pick func(Region) string) (string, []string) {
	var problems []string
	r, err := LookupRegion(region)
	if err != nil {
		problems = append(problems, err.Error())
	}
	u := strings.TrimRight(override, "/")
	if u == "" {
		u = pick(r)
	} else if !hitl.HTTPURL(u) {
		problems = append(problems, what+" must be an absolute http(s) URL")
	}
	return u, problems
}

// CallbackAccountsURL checks the location and accounts-server parameters
// of an OAuth redirect against the data-centre table and returns the
// accounts server to exchange the code with. Anything else is refused: the
// code and the client secret must only ever go to Zoho's own servers.
func CallbackAccountsURL(location, accountsServer string) (string, error) {
	r, err := LookupRegion(location)
	if err != nil {
		return "", fmt.Errorf("oauth redirect: %w", err)
	}
	if strings.TrimRight(accountsServer, "/") != r.AccountsURL {
		return "", fmt.Errorf("oauth redirect: accounts-server is not the accounts server of location %s", r.Code)
	}
	return r.AccountsURL, nil
}
