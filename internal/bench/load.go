package bench

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// errConflict marks an operation that failed its version check; loops
// count it apart from errors.
var errConflict = errors.New("version conflict")

// errorPause keeps a writer whose operations fail from spinning.
const errorPause = 10 * time.Millisecond

// op is one operation of writer w.
type op func(ctx context.Context, w int) error

// run is what one measurement collected, over one or more rounds.
type run struct {
	ops, conflicts, errs int
	firstErr             error
	lat                  []time.Duration
	elapsed              time.Duration
	sorted               bool
}

// loop runs fn from writers goroutines for d, each calling it again as
// soon as it returns, and adds what they did to r. Latencies are those of
// successful operations.
func (r *run) loop(ctx context.Context, writers int, d time.Duration, fn op) {
	type tally struct {
		ops, conflicts, errs int
		err                  error
		lat                  []time.Duration
	}
	tallies := make([]tally, writers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			t := &tallies[w]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				began := time.Now()
				err := fn(octx, w)
				elapsed := time.Since(began)
				cancel()
				switch {
				case err == nil:
					t.ops++
					t.lat = append(t.lat, elapsed)
				case errors.Is(err, errConflict):
					t.conflicts++
				default:
					t.errs++
					if t.err == nil {
						t.err = err
					}
					time.Sleep(errorPause)
				}
			}
		})
	}
	wg.Wait()
	r.elapsed += time.Since(start)
	for _, t := range tallies {
		r.ops += t.ops
		r.conflicts += t.conflicts
		r.errs += t.errs
		if r.firstErr == nil {
			r.firstErr = t.err
		}
		r.lat = append(r.lat, t.lat...)
	}
	r.sorted = false
}

// add records one successful operation of latency d.
func (r *run) add(d time.Duration) {
	r.ops++
	r.lat = append(r.lat, d)
	r.sorted = false
}

// rate is successful operations per second.
func (r *run) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// quantile is the latency below which a fraction q of the operations
// finished (nearest rank), 0 without operations.
func (r *run) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	if !r.sorted {
		slices.Sort(r.lat)
		r.sorted = true
	}
	i := int(q*float64(len(r.lat))+0.999999) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}
