// Package page renders the operator page (/admin) with html/template. It
// is apart from package admin so that only the functions serving the page
// link the template engine (see admin.Page).
package page

import (
	"embed"
	"html/template"
	"io"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
)

//go:embed page.html
var pageFS embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).ParseFS(pageFS, "page.html"))

// Render writes the page for v.
func Render(w io.Writer, v admin.View) error { return page.Execute(w, v) }

var _ admin.Page = Render
