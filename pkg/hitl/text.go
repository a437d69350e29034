package hitl

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Clip cuts s to at most n bytes on a rune boundary. A string that is cut
// ends in mark ("…", or "" for none), which counts toward n.
func Clip(s string, n int, mark string) string {
	if len(s) <= n {
		return s
	}
	s = s[:max(n-len(mark), 0)]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + mark
}

// HTTPURL reports whether raw is an absolute http or https URL.
func HTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// Heading renders the handoff's header as an agent first reads it:
// "Handoff from the bot", the title, the description and the context, one
// "key: value" line each in key order.
func (r OpenRequest) Heading() string {
	var b strings.Builder
	b.WriteString("Handoff from the bot")
	if r.Title != "" {
		b.WriteString(": " + r.Title)
	}
	if r.Description != "" {
		b.WriteString("\n\n" + r.Description)
	}
	if len(r.Context) > 0 {
		b.WriteString("\n\nContext:")
		for _, k := range slices.Sorted(maps.Keys(r.Context)) {
			b.WriteString("\n" + k + ": " + r.Context[k])
		}
	}
	return b.String()
}

// Line renders the entry as an agent reads it, marked with who wrote it:
// "[user] …", or "[bot] …" for anything else.
func (e TranscriptEntry) Line() string {
	from := "bot"
	if e.From == "user" {
		from = "user"
	}
	return "[" + from + "] " + e.Message.Readable()
}

// UploadName is the file name to upload m's file under: a file message's
// title; "" (the name in its URL or headers) for other media.
func (m Message) UploadName() string {
	if m.Type == TypeFile {
		return m.Title
	}
	return ""
}
