package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/eventsidecar/sidecar/internal/kafka"
)

// topicCmd inspects and grows the event topic.
type topicCmd struct {
	Describe      topicDescribeCmd      `cmd:"" help:"Show the event topic's partitions, offsets and retention settings."`
	AddPartitions topicAddPartitionsCmd `cmd:"" name:"add-partitions" help:"Raise the event topic's partition count to N. Existing streams stay in their partitions."`
}

type topicDescribeCmd struct{}

func (topicDescribeCmd) Run(e *env) error {
	adm, closeAdm, err := e.admin()
	if err != nil {
		return err
	}
	defer closeAdm()
	info, err := kafka.DescribeTopic(e.ctx, adm, e.cfg.KafkaTopic)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmdOut, "topic %s: %d partitions\n", info.Name, len(info.Partitions))
	keys := make([]string, 0, len(info.Configs))
	for k := range info.Configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(cmdOut, "  %s=%s\n", k, info.Configs[k])
	}
	w := tabwriter.NewWriter(cmdOut, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PARTITION\tLEADER\tREPLICAS\tISR\tSTART\tEND")
	for _, p := range info.Partitions {
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%d\t%d\n", p.Partition, p.Leader, ints(p.Replicas), ints(p.ISR), p.Start, p.End)
	}
	return w.Flush()
}

func ints(vs []int32) string {
	s := make([]string, len(vs))
	for i, v := range slices.Sorted(slices.Values(vs)) {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

type topicAddPartitionsCmd struct {
	Total int32 `arg:"" name:"N" help:"The new total number of partitions; partitions are never removed."`
	Force bool  `help:"Allow more than four times the current count."`
}

// maxGrowth bounds how many times its partitions a topic grows to without
// --force: partitions cannot be removed, and a mistyped count would be for
// good.
const maxGrowth = 4

func (c topicAddPartitionsCmd) Run(e *env) error {
	if c.Total < 1 {
		return fmt.Errorf("N: %d is not a partition count", c.Total)
	}
	adm, closeAdm, err := e.admin()
	if err != nil {
		return err
	}
	defer closeAdm()
	now, err := kafka.PartitionCount(e.ctx, adm, e.cfg.KafkaTopic)
	if err != nil {
		return err
	}
	if !c.Force && int64(c.Total) > maxGrowth*int64(now) {
		return fmt.Errorf("N: %d is more than %d times the topic's %d partitions, and partitions are never removed; "+
			"pass --force if that is meant", c.Total, maxGrowth, now)
	}
	prev, err := kafka.SetPartitions(e.ctx, adm, e.cfg.KafkaTopic, c.Total)
	if err != nil {
		return err
	}
	if prev == c.Total {
		fmt.Fprintf(cmdOut, "topic %s already has %d partitions; nothing changed\n", e.cfg.KafkaTopic, prev)
		return nil
	}
	fmt.Fprintf(cmdOut, "topic %s: %d -> %d partitions. Existing streams stay where they are; "+
		"new streams spread over all partitions once the sidecars refresh their metadata "+
		"(SIDECAR_METADATA_REFRESH), and every group reads the new partitions from their first offset.\n",
		e.cfg.KafkaTopic, prev, c.Total)
	return nil
}

func sortedKeys[V any](m map[int32]V) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
