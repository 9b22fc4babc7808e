package bench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProblems(t *testing.T) {
	var r Report
	r.expect("present", "missing", "empty", "with errors", "stopped")
	r.add("present", "1 events/s")
	r.add("empty", " ")
	bad := run{ops: 1, errs: 2, firstErr: errors.New("boom"), elapsed: time.Second}
	r.addRun("with errors", throughput(&bad, "events"), &bad)
	r.fail("stopped", errors.New("sidecar exited"))
	r.judge("missed target", "0.10", "≥ 0.80", false)

	got := strings.Join(r.Problems(), "\n")
	for _, want := range []string{"missing: missing", "empty: no value", "with errors: ", "boom", "stopped: stopped: sidecar exited"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", got, want)
		}
	}
	if strings.Contains(got, "present") || strings.Contains(got, "missed target") {
		t.Errorf("problems %q name a complete row", got)
	}
}

func TestQuantile(t *testing.T) {
	var r run
	for i := 100; i >= 1; i-- {
		r.add(time.Duration(i) * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		if got := r.quantile(tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	var empty run
	if got := empty.quantile(0.5); got != 0 {
		t.Errorf("quantile of no operations = %v, want 0", got)
	}
}

func TestCount(t *testing.T) {
	tests := map[float64]string{0: "0", 999: "999", 1000: "1 000", 1234567: "1 234 567", -1500: "-1 500", 12.6: "13"}
	for n, want := range tests {
		if got := count(n); got != want {
			t.Errorf("count(%v) = %q, want %q", n, got, want)
		}
	}
}
