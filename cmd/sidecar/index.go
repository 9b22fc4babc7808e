package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// indexCmd inspects and rebuilds the version index in Redis.
type indexCmd struct {
	Status  indexStatusCmd  `cmd:"" help:"Show the version index: its epoch, how many streams it holds, and per partition the end offset and the rebuild's watermark."`
	Rebuild indexRebuildCmd `cmd:"" help:"Read the event topic into the version index and write a new epoch."`
}

type indexStatusCmd struct {
	Scan bool `default:"true" negatable:"" help:"Count the streams' entries by scanning Redis's keys (--no-scan skips it on a large Redis)."`
	JSON bool `name:"json" help:"Print the status as JSON."`
}

// indexStatus is what index status prints.
type indexStatus struct {
	Topic      string `json:"topic"`
	Slots      int    `json:"slots"`
	EpochSlots int    `json:"epoch_slots"`
	// Epochs counts the slots per epoch value.
	Epochs        map[string]int `json:"epochs"`
	LedgerStreams int64          `json:"ledger_streams"`
	// ScannedStreams is -1 when the scan was skipped.
	ScannedStreams int64             `json:"scanned_streams"`
	Rebuild        string            `json:"rebuild,omitempty"`
	Partitions     []partitionStatus `json:"partitions"`
}

type partitionStatus struct {
	Partition int32 `json:"partition"`
	End       int64 `json:"end_offset"`
	// Watermark is -1 when no rebuild read the partition.
	Watermark int64 `json:"watermark"`
}

func (c indexStatusCmd) Run(e *env) error {
	ix, reader, closeAll, err := e.index()
	if err != nil {
		return err
	}
	defer closeAll()

	st, err := ix.Status(e.ctx)
	if err != nil {
		return err
	}
	ends, err := reader.EndOffsets(e.ctx)
	if err != nil {
		return err
	}
	out := indexStatus{
		Topic: e.cfg.KafkaTopic, Slots: st.Slots, EpochSlots: st.EpochSlots, Epochs: st.Epochs,
		LedgerStreams: st.LedgerStreams, ScannedStreams: -1, Rebuild: st.Watermarks.Rebuild,
	}
	for _, p := range slices.Sorted(maps.Keys(ends)) {
		w, ok := st.Watermarks.Next[p]
		if !ok {
			w = -1
		}
		out.Partitions = append(out.Partitions, partitionStatus{Partition: p, End: ends[p], Watermark: w})
	}
	if c.Scan {
		bar := newReporter(os.Stderr, e.log, "scanning redis for stream entries", "index scan progress")
		out.ScannedStreams, err = ix.CountStreams(e.ctx, func(n int64) { bar.set(n, -1) })
		bar.finish()
		if err != nil {
			return err
		}
	}

	if c.JSON {
		enc := json.NewEncoder(cmdOut)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return printIndexStatus(cmdOut, out)
}

func printIndexStatus(w io.Writer, st indexStatus) error {
	fmt.Fprintf(w, "topic %s\n", st.Topic)
	switch {
	case st.EpochSlots == st.Slots && len(st.Epochs) == 1:
		for epoch := range st.Epochs {
			fmt.Fprintf(w, "epoch: present in every slot (%s)\n", epoch)
		}
	case st.EpochSlots == st.Slots:
		fmt.Fprintf(w, "epoch: present in every slot, %d different values (rebuilds ran side by side)\n", len(st.Epochs))
	default:
		fmt.Fprintf(w, "epoch: MISSING in %d of %d slots: appends to their streams are refused until a rebuild writes it\n",
			st.Slots-st.EpochSlots, st.Slots)
	}
	fmt.Fprintf(w, "streams: %d in the slots' ledgers", st.LedgerStreams)
	if st.ScannedStreams >= 0 {
		fmt.Fprintf(w, ", %d entries found by scanning", st.ScannedStreams)
		if st.ScannedStreams != st.LedgerStreams {
			fmt.Fprint(w, " (they differ: streams under reservation or repair, or keys lost)")
		}
	}
	fmt.Fprintln(w)
	if st.Rebuild == "" {
		fmt.Fprintln(w, "watermarks: none (no rebuild recorded its progress)")
	} else {
		fmt.Fprintf(w, "watermarks: of rebuild %s; appends after them are indexed by their own commits\n", st.Rebuild)
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tEND OFFSET\tWATERMARK\tSINCE WATERMARK")
	for _, p := range st.Partitions {
		if p.Watermark < 0 {
			fmt.Fprintf(tw, "%d\t%d\t-\t-\n", p.Partition, p.End)
			continue
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", p.Partition, p.End, p.Watermark, max(p.End-p.Watermark, 0))
	}
	return tw.Flush()
}

type indexRebuildCmd struct {
	Full bool `help:"Read every partition from its first offset, even when the watermarks of an earlier rebuild allow resuming, and refuse appends on every sidecar until done. Use it after a failover to a Redis replica that may have lagged."`
}

func (c indexRebuildCmd) Help() string {
	return "Merges every record of the event topic into the version index, then writes a new epoch. " +
		"Merging only raises versions, so it is safe beside running sidecars; without --full they keep " +
		"appending meanwhile, and the rebuild resumes from the watermarks of an earlier rebuild when the " +
		"index still holds everything that rebuild merged. Before writing the epoch it waits " +
		"SIDECAR_APPEND_LEASE for appends that were in flight."
}

func (c indexRebuildCmd) Run(e *env) error {
	ix, reader, closeAll, err := e.index()
	if err != nil {
		return err
	}
	defer closeAll()

	bar := newReporter(os.Stderr, e.log, "reading the topic into the index", "index rebuild progress")
	stats, err := store.RebuildIndex(e.ctx, ix, reader, store.RebuildOptions{
		Topic:         e.cfg.KafkaTopic,
		Settle:        e.cfg.AppendLease,
		Full:          c.Full,
		RefuseAppends: c.Full,
		Logger:        e.log,
		Progress:      func(p store.RebuildProgress) { bar.set(p.Done, p.Total) },
	})
	bar.finish()
	if err != nil {
		return fmt.Errorf("index rebuild: %w", err)
	}
	from := "from the start of every partition"
	if stats.Resumed {
		from = "resumed from the watermarks"
	}
	fmt.Fprintf(cmdOut, "index rebuilt %s in %s: %d streams, %d records merged, %d skipped; epoch %s\n",
		from, stats.Duration.Round(time.Millisecond), stats.Streams, stats.Records, stats.Skipped, stats.Epoch)
	return nil
}

// index opens the version index and a reader of the event topic, as the
// sidecars reach them.
func (e *env) index() (*versions.Index, *kafka.Reader, func(), error) {
	if e.cfg.Embedded() {
		return nil, nil, nil, errors.New("SIDECAR_KAFKA_BROKERS and SIDECAR_REDIS_URL are not set: the embedded " +
			"index lives inside a running sidecar, which rebuilds it at every start")
	}
	kcfg, err := e.cfg.KafkaClientConfig(e.log)
	if err != nil {
		return nil, nil, nil, err
	}
	admCl, err := kafka.NewAdminClient(kcfg)
	if err != nil {
		return nil, nil, nil, err
	}
	rdb, err := e.cfg.RedisClient()
	if err != nil {
		admCl.Close()
		return nil, nil, nil, fmt.Errorf("SIDECAR_REDIS_URL: %w", err)
	}
	ix := versions.New(rdb, e.cfg.KafkaTopic)
	closeAll := func() {
		ix.Close()
		rdb.Close()
		admCl.Close()
	}
	return ix, kafka.NewReader(kcfg, admCl), closeAll, nil
}

// reporter shows how far long work got: a bar on a terminal, a log line
// every reportEvery otherwise.
type reporter struct {
	bar  *progressbar.ProgressBar
	log  *slog.Logger
	msg  string
	last time.Time
}

const reportEvery = 5 * time.Second

func newReporter(w *os.File, log *slog.Logger, description, logMsg string) *reporter {
	r := &reporter{log: log, msg: logMsg, last: time.Now()}
	if term.IsTerminal(int(w.Fd())) {
		r.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(description),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return r
}

// set reports done of total; a negative total is unknown.
func (r *reporter) set(done, total int64) {
	if r.bar != nil {
		if total >= 0 && r.bar.GetMax64() != total {
			r.bar.ChangeMax64(total)
		}
		_ = r.bar.Set64(done)
		return
	}
	if time.Since(r.last) >= reportEvery {
		r.last = time.Now()
		if total >= 0 {
			r.log.Info(r.msg, "done", done, "total", total)
		} else {
			r.log.Info(r.msg, "done", done)
		}
	}
}

func (r *reporter) finish() {
	if r.bar != nil {
		_ = r.bar.Finish()
	}
}
