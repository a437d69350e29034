// Package health is the vocabulary of the bridge's self-checks: each
// provider reports a list of checks, each with a status and, when it is
// not ok, what to do about it. Detail and Fix are shown to operators: they
// name settings and scopes, never a secret's value.
package health

// Status is the outcome of one check, or a provider's verdict.
type Status string

// Statuses, from best to worst.
const (
	OK   Status = "ok"
	Warn Status = "warning"
	Fail Status = "failing"
)

// rank orders statuses by severity.
func (s Status) rank() int {
	switch s {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Check is the outcome of one check.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to do when Status is not OK.
	Fix string `json:"fix,omitempty"`
}

// Passed builds a check that passed.
func Passed(name, detail string) Check { return Check{Name: name, Status: OK, Detail: detail} }

// Warning builds a check that needs attention but does not stop the bridge.
func Warning(name, detail, fix string) Check {
	return Check{Name: name, Status: Warn, Detail: detail, Fix: fix}
}

// Failed builds a check that failed: something the bridge needs is missing.
func Failed(name, detail, fix string) Check {
	return Check{Name: name, Status: Fail, Detail: detail, Fix: fix}
}

// Report is one provider's (or the bridge's own) checks and verdict.
type Report struct {
	Name    string  `json:"name"`
	Verdict Status  `json:"verdict"`
	Checks  []Check `json:"checks"`
}

// NewReport returns a report whose verdict is its worst check.
func NewReport(name string, checks ...Check) Report {
	r := Report{Name: name, Verdict: OK, Checks: checks}
	for _, c := range checks {
		if c.Status.rank() > r.Verdict.rank() {
			r.Verdict = c.Status
		}
	}
	return r
}

// Worst returns the worst verdict of reports.
func Worst(reports ...Report) Status {
	v := OK
	for _, r := range reports {
		if r.Verdict.rank() > v.rank() {
			v = r.Verdict
		}
	}
	return v
}
