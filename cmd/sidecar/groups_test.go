package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// runCLI parses args with the command tree and runs the command, returning
// what it printed.
func runCLI(t *testing.T, e *env, args ...string) (string, error) {
	t.Helper()
	var c cli
	k, err := kong.New(&c, kong.Name("sidecar"))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := k.Parse(args)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmdOut = &out
	defer func() { cmdOut = nil }()
	err = kctx.Run(e)
	return out.String(), err
}

func TestGroupAndTopicCommands(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		if !b.Real() {
			testenv.OwnKafka(t, &cfg)
		}
		sc := testenv.Start(t, cfg)
		c := testenv.Client(t, sc.Addr())
		e := &env{ctx: t.Context(), cfg: cfg, log: testenv.Logger(t)}
		for i := range 10 {
			if _, err := c.AppendToStream(t.Context(), &eventstorepb.AppendRequest{StreamName: fmt.Sprintf("cli-%d", i),
				Events: []*eventstorepb.Event{{EventType: "E"}}}); err != nil {
				t.Fatal(err)
			}
		}

		// A member reads and acks everything.
		ctx, leave := context.WithCancel(t.Context())
		defer leave()
		sub, err := c.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sub.Send(&eventstorepb.SubscribeClientMessage{Kind: &eventstorepb.SubscribeClientMessage_Open{
			Open: &eventstorepb.SubscribeOpen{Group: "cli-read"}}})
		for n := 0; n < 10; {
			m, err := sub.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if d := m.GetDelivery(); d != nil {
				n++
				sub.Send(&eventstorepb.SubscribeClientMessage{Kind: &eventstorepb.SubscribeClientMessage_Ack{
					Ack: &eventstorepb.Ack{Positions: []*eventstorepb.Position{d.Position}}}})
			}
		}
		eventually(t, "the group lists without lag", func() error {
			out, err := runCLI(t, e, "groups", "list")
			switch {
			case err != nil:
				return err
			case !strings.Contains(out, "cli-read") || !strings.Contains(out, cfg.KafkaTopic):
				return fmt.Errorf("list does not show the group:\n%s", out)
			case lagSum(out) != 0:
				return fmt.Errorf("lag %d, want 0:\n%s", lagSum(out), out)
			}
			return nil
		})

		// A group with members is not reset: their commits would undo it.
		_, err = runCLI(t, e, "groups", "reset", "cli-read", "--to-start")
		if !errors.Is(err, kafka.ErrGroupActive) || !strings.Contains(err.Error(), "members") {
			t.Fatalf("reset of an active group: %v, want it refused naming its members", err)
		}
		if _, err := runCLI(t, e, "groups", "reset", "cli-read"); err == nil {
			t.Fatal("reset without a target was accepted")
		}
		leave()
		eventually(t, "reset once the member left", func() error {
			_, err := runCLI(t, e, "groups", "reset", "cli-read", "--to-start")
			return err
		})
		out, err := runCLI(t, e, "groups", "list")
		if err != nil || lagSum(out) != 10 {
			t.Fatalf("after the reset to the start: lag %d (%v), want all 10 records:\n%s", lagSum(out), err, out)
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		for _, to := range [][]string{{"--to-time", future}, {"--to-end"}} {
			if _, err := runCLI(t, e, append([]string{"groups", "reset", "cli-read"}, to...)...); err != nil {
				t.Fatalf("reset %v: %v", to, err)
			}
			if out, _ := runCLI(t, e, "groups", "list"); lagSum(out) != 0 {
				t.Fatalf("after reset %v: lag %d, want 0:\n%s", to, lagSum(out), out)
			}
		}
		if _, err := runCLI(t, e, "groups", "reset", "never-seen", "--to-start"); !errors.Is(err, kafka.ErrUnknownGroup) {
			t.Fatalf("reset of an unknown group: %v", err)
		}

		out, err = runCLI(t, e, "topic", "describe")
		if err != nil || !strings.Contains(out, "4 partitions") || !strings.Contains(out, "retention.ms=-1") {
			t.Fatalf("describe: %v\n%s", err, out)
		}
		_, err = runCLI(t, e, "topic", "add-partitions", "2")
		if !errors.Is(err, kafka.ErrShrink) || !strings.Contains(err.Error(), "has 4 partitions") {
			t.Fatalf("shrinking: %v, want it refused with the reason", err)
		}
		if out, err := runCLI(t, e, "topic", "add-partitions", "4"); err != nil || !strings.Contains(out, "nothing changed") {
			t.Fatalf("same count: %v\n%s", err, out)
		}
		if _, err := runCLI(t, e, "topic", "add-partitions", "17"); err == nil || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("more than four times the partitions without --force: %v, want it refused", err)
		}
		if out, err := runCLI(t, e, "topic", "add-partitions", "6"); err != nil || !strings.Contains(out, "4 -> 6") {
			t.Fatalf("growing: %v\n%s", err, out)
		}
		eventually(t, "six partitions described", func() error {
			out, err := runCLI(t, e, "topic", "describe")
			if err == nil && !strings.Contains(out, "6 partitions") {
				err = fmt.Errorf("describe:\n%s", out)
			}
			return err
		})
		if out, err := runCLI(t, e, "topic", "add-partitions", "25", "--force"); err != nil || !strings.Contains(out, "6 -> 25") {
			t.Fatalf("growing more than four times with --force: %v\n%s", err, out)
		}
	})
}

// lagSum adds up the LAG column of groups list.
func lagSum(out string) int {
	sum := 0
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		var n int
		if _, err := fmt.Sscan(f[7], &n); err == nil {
			sum += n
		}
	}
	return sum
}

func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
