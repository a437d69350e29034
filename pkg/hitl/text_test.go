package hitl

import "testing"

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		mark string
		want string
	}{
		{"short", 10, "…", "short"},
		{"exactly", 7, "…", "exactly"},
		{"abcdefgh", 5, "", "abcde"},
		{"abcdefgh", 5, "…", "ab…"}, // the mark is 3 bytes and counts
		{"héllo", 2, "", "h"},       // é is 2 bytes: not split
		{"日本語", 7, "", "日本"},
		{"日本語", 7, "…", "日…"},
	} {
		got := Clip(tc.s, tc.n, tc.mark)
		if got != tc.want || len(got) > tc.n {
			t.Errorf("Clip(%q, %d, %q) = %q, want %q", tc.s, tc.n, tc.mark, got, tc.want)
		}
	}
}

func TestHTTPURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://example.com/a": true, "http://127.0.0.1:8080": true,
		"ftp://example.com": false, "/relative": false, "https://": false, "": false, "://bad": false,
	} {
		if HTTPURL(raw) != want {
			t.Errorf("HTTPURL(%q) = %v", raw, !want)
		}
	}
}
