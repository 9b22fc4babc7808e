package bench

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"syscall"
	"time"

	"github.com/google/uuid"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Targets of the append scenario.
const (
	targetWritersRatio = 64
	targetRatio        = 0.8
	addedP50Writers    = 1
	addedP50Max        = 300 * time.Microsecond
	addedP99Writers    = 64
	addedP99Max        = 1500 * time.Microsecond
)

// benchLease is the lease of the reservations the raw Redis loops make:
// the sidecar's default.
const benchLease = 10 * time.Second

// contentHash stands in for the sidecar's content hash of an event: the
// same length, so the scripts store as much.
const contentHash = "1h3kq0x9zb2mc"

// loopTarget is one loop of the append scenario.
type loopTarget struct {
	name string
	fn   op
	run  run
	// around brackets each measured round, for CPU readings.
	around func(round func())
}

// level is what the append scenario measured at one writer count.
type level struct {
	writers                                int
	sidecar, produce, reserve, commit, rtt *loopTarget
	sidecarCPU, clientCPU                  time.Duration
}

func appendRowNames(n int) (sidecar, produce, reserve, commit, rtt, ratio, cpu string) {
	p := "append, " + writers(n) + ": "
	return p + "sidecar", p + "raw produce", p + "raw redis reserve (1 EVALSHA)",
		p + "raw redis commit + reserve (1 EVALSHA)", p + "gRPC round trip (health check)",
		p + "sidecar / raw produce", p + "sidecar CPU per 100 000 appends"
}

const (
	rowAddedP50 = "added latency p50, 1 writer (sidecar − raw produce)"
	rowAddedP99 = "added latency p99, 64 writers (sidecar − raw produce)"
	rowBudget   = "latency budget p50, 1 writer: gRPC + commit and reserve + produce"
	rowCPUAll   = "sidecar CPU per 100 000 appends, every level"
	rowPeakRSS  = "sidecar peak RSS (VmHWM) after the append loops"
)

// appends measures appends through the sidecar a at every level against
// the raw work inside one.
func (h *harness) appends(ctx context.Context, a *child) error {
	for _, n := range h.sz.Levels {
		s, p, r, c, rtt, ratio, cpu := appendRowNames(n)
		h.rep.expect(s, p, r, c, rtt, ratio, cpu)
	}
	h.rep.expect(rowBudget, rowCPUAll, rowPeakRSS)
	if slices.Contains(h.sz.Levels, addedP50Writers) {
		h.rep.expect(rowAddedP50)
	}
	if slices.Contains(h.sz.Levels, addedP99Writers) {
		h.rep.expect(rowAddedP99)
	}

	topic, err := h.newTopic(ctx, "produce", false)
	if err != nil {
		return err
	}
	// The sidecar's own producer, so every setting is the sidecar's.
	producer, err := kafka.NewProducer(kafka.Config{Brokers: h.cfg.Brokers, Topic: topic})
	if err != nil {
		return err
	}
	defer producer.Close()

	levels := make(map[int]*level)
	var cpuAll time.Duration
	var appendsAll int
	for _, n := range h.sz.Levels {
		lv, err := h.appendLevel(ctx, a, producer, topic, n)
		if err != nil {
			return err
		}
		levels[n] = lv
		cpuAll += lv.sidecarCPU
		appendsAll += lv.sidecar.run.ops
	}

	if lv := levels[addedP50Writers]; lv != nil {
		added := lv.sidecar.run.quantile(0.5) - lv.produce.run.quantile(0.5)
		h.rep.judge(rowAddedP50, ms(added), "≤ "+ms(addedP50Max), added <= addedP50Max)
	}
	if lv := levels[addedP99Writers]; lv != nil {
		added := lv.sidecar.run.quantile(0.99) - lv.produce.run.quantile(0.99)
		h.rep.judge(rowAddedP99, ms(added), "≤ "+ms(addedP99Max), added <= addedP99Max)
	}
	lv := levels[h.sz.Levels[0]]
	parts := []time.Duration{lv.rtt.run.quantile(0.5), lv.commit.run.quantile(0.5), lv.produce.run.quantile(0.5)}
	var sum time.Duration
	for _, d := range parts {
		sum += d
	}
	h.rep.add(rowBudget, fmt.Sprintf("%s + %s + %s = %s; the sidecar takes %s (%s)",
		ms(parts[0]), ms(parts[1]), ms(parts[2]), ms(sum),
		ms(lv.sidecar.run.quantile(0.5)), writers(lv.writers)))
	h.rep.add(rowCPUAll, fmt.Sprintf("%.2f s (%s appends, %.1f s of CPU)",
		per100k(cpuAll, appendsAll), count(float64(appendsAll)), cpuAll.Seconds()))
	_, peak, err := a.usage()
	if err != nil {
		return err
	}
	h.rep.add(rowPeakRSS, fmt.Sprintf("%.1f MiB", float64(peak)/(1<<20)))
	return nil
}

// appendLevel runs every loop of the append scenario with n writers.
func (h *harness) appendLevel(ctx context.Context, a *child, producer *kafka.Producer,
	topic string, n int) (*level, error) {
	// The raw Redis loops write to an index of their own, emptied after
	// each level so that the shared Redis holds little of it at a time.
	redisTopic := h.id + "-redis"
	ix := versions.New(h.rdb, redisTopic)
	if err := ix.WriteEpoch(ctx, h.id); err != nil {
		return nil, err
	}
	reserve, reserved := reserveLoop(ix, n)
	commit, committed := commitReserveLoop(ix, n)
	defer func() {
		streams := func(yield func(string) bool) {
			for s := range reserved {
				if !yield(s) {
					return
				}
			}
			for s := range committed {
				if !yield(s) {
					return
				}
			}
		}
		if _, err := versions.Drop(context.WithoutCancel(ctx), h.rdb, redisTopic, streams); err != nil {
			h.log.Warn("emptying the raw redis index failed", "err", err)
		}
	}()

	lv := &level{
		writers: n,
		sidecar: h.sidecarLoop(a, n),
		produce: produceLoop(producer, topic, n, h.id),
		reserve: reserve,
		commit:  commit,
		rtt:     rttLoop(a),
	}
	lv.sidecar.around = func(round func()) {
		before, _, _ := a.usage()
		round()
		after, _, _ := a.usage()
		lv.sidecarCPU += after - before
	}
	lv.produce.around = func(round func()) {
		before := selfCPU()
		round()
		lv.clientCPU += selfCPU() - before
	}
	loops := []*loopTarget{lv.produce, lv.sidecar, lv.reserve, lv.commit, lv.rtt}

	h.log.Info("append level started", "writers", n)
	for _, t := range loops {
		var warm run
		warm.loop(ctx, n, h.sz.Warmup, t.fn)
		if warm.errs > 0 {
			return nil, fmt.Errorf("%s, %s: warm-up failed: %w", t.name, writers(n), warm.firstErr)
		}
	}
	// Rounds alternate between the loops so that load from elsewhere on
	// the machine falls on all of them alike.
	for range h.sz.Rounds {
		for _, t := range loops {
			round := func() { t.run.loop(ctx, n, h.sz.Round, t.fn) }
			if t.around != nil {
				t.around(round)
			} else {
				round()
			}
		}
	}

	sName, pName, rName, cName, rttName, ratioName, cpuName := appendRowNames(n)
	h.rep.addRun(sName, throughput(&lv.sidecar.run, "events"), &lv.sidecar.run)
	h.rep.addRun(pName, throughput(&lv.produce.run, "events")+
		fmt.Sprintf(" · producer CPU %.2f s per 100 000", per100k(lv.clientCPU, lv.produce.run.ops)), &lv.produce.run)
	h.rep.addRun(rName, throughput(&lv.reserve.run, "calls"), &lv.reserve.run)
	h.rep.addRun(cName, throughput(&lv.commit.run, "pairs"), &lv.commit.run)
	h.rep.addRun(rttName, throughput(&lv.rtt.run, "calls"), &lv.rtt.run)
	rt := lv.sidecar.run.rate() / lv.produce.run.rate()
	if n == targetWritersRatio {
		h.rep.judge(ratioName, ratio(rt), "≥ "+ratio(targetRatio), rt >= targetRatio)
	} else {
		h.rep.add(ratioName, ratio(rt))
	}
	h.rep.add(cpuName, fmt.Sprintf("%.2f s", per100k(lv.sidecarCPU, lv.sidecar.run.ops)))
	return lv, nil
}

// sidecarLoop appends one event per call, each writer to its own stream,
// expecting the version its last append returned.
func (h *harness) sidecarLoop(a *child, n int) *loopTarget {
	streams, expected, pays := make([]string, n), make([]int64, n), make([]*payload, n)
	for w := range n {
		streams[w] = fmt.Sprintf("append-%d-%d", n, w)
		pays[w] = newPayload()
	}
	h.track(a.topic, streams...)
	return &loopTarget{name: "sidecar", fn: func(ctx context.Context, w int) error {
		resp, err := a.es.AppendToStream(ctx, &eventstorepb.AppendRequest{
			StreamName:      streams[w],
			ExpectedVersion: expected[w],
			Events:          []*eventstorepb.Event{newEvent(pays[w].next())},
		})
		if err != nil {
			return err
		}
		expected[w] = resp.CurrentVersion
		return nil
	}}
}

// produceLoop produces the record the sidecar would write for the same
// append, to the stream's partition, and waits for its acknowledgement.
func produceLoop(p *kafka.Producer, topic string, n int, id string) *loopTarget {
	streams, parts, versions, pays := make([]string, n), make([]int32, n), make([]int64, n), make([]*payload, n)
	part := newPartitioner(topic, partitions)
	for w := range n {
		streams[w] = fmt.Sprintf("produce-%d-%d-%s", n, w, id)
		parts[w] = part.of(streams[w])
		pays[w] = newPayload()
	}
	return &loopTarget{name: "raw produce", fn: func(ctx context.Context, w int) error {
		rec, err := sidecarRecord(topic, parts[w], streams[w], versions[w]+1, pays[w].next())
		if err != nil {
			return err
		}
		if _, err := p.Produce(ctx, rec); err != nil {
			return err
		}
		versions[w]++
		return nil
	}}
}

// reserveLoop sends the reserve script for the first event of a new
// stream per call: each call reserves, none waits for another's lease.
// The second result yields the streams it reserved, once it is done.
func reserveLoop(ix *versions.Index, n int) (*loopTarget, iter.Seq[string]) {
	seq := make([]int, n)
	name := func(w, i int) string { return fmt.Sprintf("reserve-%d-%d-%d", n, w, i) }
	streams := func(yield func(string) bool) {
		for w := range n {
			for i := 1; i <= seq[w]; i++ {
				if !yield(name(w, i)) {
					return
				}
			}
		}
	}
	part := newPartitioner("", partitions)
	return &loopTarget{name: "raw reserve", fn: func(ctx context.Context, w int) error {
		seq[w]++
		stream := name(w, seq[w])
		res, err := ix.ReserveDirect(ctx, versions.ReserveRequest{
			Stream:    stream,
			Expected:  0,
			Events:    []versions.EventKey{{ID: uuid.NewString(), Hash: contentHash}},
			Token:     uuid.NewString(),
			Now:       time.Now(),
			Lease:     benchLease,
			Partition: part.of(stream),
		})
		if err == nil && res.Duplicate {
			err = fmt.Errorf("reserve of new stream %q answered as a duplicate", stream)
		}
		return err
	}}, streams
}

// commitReserveLoop sends one script call per append, each writer on its
// own stream: the commit of the writer's previous append with the
// reservation of its next, the Redis work of an append through the
// sidecar to a stream written repeatedly. The second result is its
// streams.
func commitReserveLoop(ix *versions.Index, n int) (*loopTarget, iter.Seq[string]) {
	streams, expected := make([]string, n), make([]int64, n)
	pending := make([]*versions.Commit, n)
	part := newPartitioner("", partitions)
	for w := range n {
		streams[w] = fmt.Sprintf("commit-%d-%d", n, w)
	}
	return &loopTarget{name: "raw commit + reserve", fn: func(ctx context.Context, w int) error {
		events := []versions.EventKey{{ID: uuid.NewString(), Hash: contentHash}}
		req := versions.ReserveRequest{
			Stream:    streams[w],
			Expected:  expected[w],
			Events:    events,
			Token:     uuid.NewString(),
			Now:       time.Now(),
			Lease:     benchLease,
			Partition: part.of(streams[w]),
		}
		var res versions.Reservation
		var err error
		if pending[w] == nil {
			res, err = ix.ReserveDirect(ctx, req)
		} else {
			res, err = ix.CommitAndReserveDirect(ctx, *pending[w], req)
		}
		if err != nil {
			pending[w] = nil
			return err
		}
		// The offset stands in for the record's: one per append, rising.
		pending[w] = &versions.Commit{Reservation: res, Offset: expected[w], Events: events}
		expected[w]++
		return nil
	}}, slices.Values(streams)
}

// rttLoop calls the sidecar's health check: a gRPC round trip with no
// work behind it.
func rttLoop(a *child) *loopTarget {
	return &loopTarget{name: "grpc health", fn: func(ctx context.Context, w int) error {
		_, err := a.health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}}
}

// selfCPU is the CPU time this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// per100k is seconds of cpu per 100 000 operations.
func per100k(cpu time.Duration, ops int) float64 {
	if ops == 0 {
		return 0
	}
	return cpu.Seconds() * 100_000 / float64(ops)
}
