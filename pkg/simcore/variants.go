package simcore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// TB is the part of testing.TB the helpers here use.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Delivered returns a check of what a simulator's agent-side action
// answers (the status of the webhook it delivered, and its error): the
// test fails unless the bridge took the delivery with a 200.
func Delivered(t TB) func(status int, err error) {
	return func(status int, err error) {
		t.Helper()
		if err != nil || status != 200 {
			t.Fatal(fmt.Errorf("webhook delivery: status %d, err %v", status, err))
		}
	}
}

// unforeseen are the values WithUnknownFields adds, one per JSON kind.
var unforeseen = map[string]any{
	"object": map[string]any{"nested": []any{json.Number("1"), "two", nil, map[string]any{"deeper": true}}},
	"array":  []any{"a", nil}, "string": "unforeseen", "null": nil,
	"number": json.Number("90071992547409930"), "boolean": true,
}

// WithUnknownFields returns a documented JSON body as it is ("as
// documented"), then a copy per object in it (the root "$", nested
// objects, the objects of an array together) and per JSON kind, with a
// field the documentation does not name added to that object
// ("$.chat.users[] + string"), and a copy per kind with one added to every
// object ("everywhere + null"): what a platform that adds fields may send.
// Numbers keep their literal text.
func WithUnknownFields(t TB, body []byte) map[string][]byte {
	t.Helper()
	decode := func() any {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(fmt.Errorf("decode the documented body: %w", err))
		}
		return v
	}
	var paths []string
	objects(decode(), "$", func(_ map[string]any, path string) {
		if !slices.Contains(paths, path) {
			paths = append(paths, path)
		}
	})
	out := map[string][]byte{"as documented": body}
	add := func(name, only string, value any) {
		doc := decode()
		objects(doc, "$", func(o map[string]any, path string) {
			if only == "" || only == path {
				o["x_unforeseen_field"] = value
			}
		})
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(fmt.Errorf("encode a variant: %w", err))
		}
		out[name] = b
	}
	for kind, value := range unforeseen {
		add("everywhere + "+kind, "", value)
		for _, p := range paths {
			add(p+" + "+kind, p, value)
		}
	}
	return out
}

// objects calls visit for every object in v, innermost first, with its
// path ("[]" for an array's elements).
func objects(v any, path string, visit func(o map[string]any, path string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			objects(child, path+"."+k, visit)
		}
		visit(v, path)
	case []any:
		for _, child := range v {
			objects(child, path+"[]", visit)
		}
	}
}
