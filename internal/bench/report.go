package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Results of a row with a target.
const (
	pass    = "PASS"
	fail    = "FAIL"
	errored = "ERROR"
)

// Row is one line of the table.
type Row struct {
	Name  string
	Value string
	// Target and Result are set for figures with a target.
	Target string
	Result string
	// Errors counts the failed operations behind the figure.
	Errors int
}

// Report is the table of one run and the lines printed above it.
type Report struct {
	Header []string
	Rows   []Row
	// expected are the names of the rows the run's scenarios promise.
	expected []string
}

func (r *Report) expect(names ...string) { r.expected = append(r.expected, names...) }

func (r *Report) add(name, value string) { r.Rows = append(r.Rows, Row{Name: name, Value: value}) }

// addRun adds a figure measured by m, with m's errors if it had any.
func (r *Report) addRun(name, value string, m *run) {
	r.Rows = append(r.Rows, Row{Name: name, Value: value + failures(m), Errors: m.errs})
}

// judge adds a figure with its target and whether it met it.
func (r *Report) judge(name, value, target string, met bool) {
	res := fail
	if met {
		res = pass
	}
	r.Rows = append(r.Rows, Row{Name: name, Value: value, Target: target, Result: res})
}

// fail records a scenario that stopped with err; its remaining rows stay
// missing.
func (r *Report) fail(scenario string, err error) {
	r.Rows = append(r.Rows, Row{Name: scenario, Value: "stopped: " + err.Error(), Result: errored})
}

// Problems lists what makes the run incomplete: expected rows that are
// missing or empty, and rows that report an error. Targets missed are not
// problems.
func (r *Report) Problems() []string {
	var out []string
	have := make(map[string]bool, len(r.Rows))
	for _, row := range r.Rows {
		switch {
		case row.Result == errored:
			out = append(out, fmt.Sprintf("%s: %s", row.Name, row.Value))
		case strings.TrimSpace(row.Value) == "":
			out = append(out, fmt.Sprintf("%s: no value", row.Name))
		case row.Errors > 0:
			out = append(out, fmt.Sprintf("%s: %s", row.Name, row.Value))
		}
		have[row.Name] = true
	}
	for _, name := range r.expected {
		if !have[name] {
			out = append(out, fmt.Sprintf("%s: missing", name))
		}
	}
	return out
}

// WriteMarkdown prints the header lines and the table.
func (r *Report) WriteMarkdown(w io.Writer) {
	for _, h := range r.Header {
		fmt.Fprintln(w, h)
	}
	if len(r.Header) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| measurement | value | target | result |")
	fmt.Fprintln(w, "|---|---|---|---|")
	cell := strings.NewReplacer("|", `\|`, "\n", " ").Replace
	for _, row := range r.Rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", cell(row.Name), cell(row.Value), cell(row.Target), row.Result)
	}
}

// count prints n with spaces between groups of three digits.
func count(n float64) string {
	s := strconv.FormatInt(int64(math.Round(n)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

func ratio(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

// latencies summarises a run's median and 99th percentile.
func latencies(r *run) string {
	return "p50 " + ms(r.quantile(0.50)) + " · p99 " + ms(r.quantile(0.99))
}

// throughput summarises a run: rate and latencies.
func throughput(r *run, unit string) string {
	return count(r.rate()) + " " + unit + "/s · " + latencies(r)
}

// failures is empty for a run without errors.
func failures(r *run) string {
	if r.errs == 0 {
		return ""
	}
	return fmt.Sprintf(" · %d errors (first: %v)", r.errs, r.firstErr)
}

func writers(n int) string {
	if n == 1 {
		return "1 writer"
	}
	return strconv.Itoa(n) + " writers"
}
