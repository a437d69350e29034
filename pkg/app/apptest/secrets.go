package apptest

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// AddSecret adds values that must never be logged, such as the forged
// credentials a test presents.
func (e *Env) AddSecret(values ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, values...)
}

// Secrets lists every credential the Env knows: its configuration's
// secrets, the simulators' credentials, every token and cookie that crossed
// its Network, and what tests added with AddSecret. Values shorter than 8
// bytes are left out: they would match by chance.
func (e *Env) Secrets() []string {
	sec := e.Config.Secret
	all := append([]string{sec.CallbackSigningSecret, sec.BotpressPathToken, sec.AdminAPIKey, sec.BotpressWebhookURL,
		e.LiveChat.Options().PAT, e.LiveChat.AgentToken(), e.Zoho.Options().ClientSecret, e.Zoho.Options().RefreshToken},
		sec.BotAPIKeys...)
	for _, b := range sec.Blocks {
		all = append(all, blockStrings(b)...)
	}
	all = append(all, e.Net.Credentials()...)
	e.mu.Lock()
	all = append(all, e.secrets...)
	e.mu.Unlock()
	seen := map[string]bool{}
	out := all[:0]
	for _, s := range all {
		if len(s) >= 8 && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// blockStrings are the string values in a platform's block of the config
// secret, at any depth: each may be a credential.
func blockStrings(block json.RawMessage) []string {
	var v any
	_ = json.Unmarshal(block, &v)
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

// LogScan tallies the log checks of every Env of the test binary so far.
type LogScan struct {
	Envs    int // Envs whose logs were checked
	Lines   int // log lines checked
	Secrets int // credentials looked for, summed over the Envs
	Leaks   int // credentials found in a log
}

var scans struct {
	mu sync.Mutex
	LogScan
}

// LogScans returns the tally of the log checks made so far.
func LogScans() LogScan {
	scans.mu.Lock()
	defer scans.mu.Unlock()
	return scans.LogScan
}

// checkLogs fails t for every known credential found in the logs.
func (e *Env) checkLogs(t testing.TB) {
	logs := e.Logs.String()
	secrets := e.Secrets()
	leaks := 0
	for _, s := range secrets {
		i := strings.Index(logs, s)
		if i < 0 {
			continue
		}
		leaks++
		start := strings.LastIndexByte(logs[:i], '\n') + 1
		end := strings.IndexByte(logs[i:], '\n')
		if end < 0 {
			end = len(logs) - i
		}
		line := strings.ReplaceAll(logs[start:i+end], s, "<"+s[:4]+"…>")
		t.Errorf("a log line contains a credential (%s…): %s", s[:4], line)
	}
	scans.mu.Lock()
	defer scans.mu.Unlock()
	scans.Envs++
	scans.Lines += strings.Count(logs, "\n")
	scans.Secrets += len(secrets)
	scans.Leaks += leaks
}
