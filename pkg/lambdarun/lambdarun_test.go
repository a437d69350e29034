package lambdarun

import "testing"

func TestProcs(t *testing.T) {
	for _, c := range []struct {
		memory string
		cpus   int
		want   int
	}{
		{"128", 2, 1},
		{"1769", 2, 1},
		{"1770", 2, 2},
		{"10240", 2, 2}, // never more than the machine shows
		{"10240", 8, 6},
		{"", 4, 4}, // not in Lambda: Go's default
		{"lots", 4, 4},
	} {
		if got := procs(c.memory, c.cpus); got != c.want {
			t.Errorf("procs(%q, %d) = %d, want %d", c.memory, c.cpus, got, c.want)
		}
	}
}
