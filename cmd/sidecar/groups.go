package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
)

// cmdOut is where operator commands print their results.
var cmdOut io.Writer = os.Stdout

// groupsCmd inspects and moves the consumer groups of the event topic.
type groupsCmd struct {
	List  groupsListCmd  `cmd:"" help:"List the groups that consume the event topic, with their lag per partition."`
	Reset groupsResetCmd `cmd:"" help:"Move a group's committed offsets. The group must have no members."`
}

type groupsListCmd struct{}

func (groupsListCmd) Run(e *env) error {
	adm, closeAdm, err := e.admin()
	if err != nil {
		return err
	}
	defer closeAdm()
	lags, unread, err := kafka.GroupLags(e.ctx, adm, e.cfg.KafkaTopic)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(unread)) {
		e.log.Warn("group not read; it may consume the topic", "group", name, "err", unread[name])
	}
	if len(lags) == 0 {
		fmt.Fprintf(cmdOut, "no group consumes topic %s\n", e.cfg.KafkaTopic)
		return nil
	}
	w := tabwriter.NewWriter(cmdOut, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GROUP\tSTATE\tMEMBERS\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	for _, g := range lags {
		for _, p := range g.Partitions {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%s\t%s\n", g.Group, g.State, g.Members, p.Topic,
				p.Partition, offsetText(p.Committed), p.End, offsetText(p.Lag), p.Member)
		}
	}
	return w.Flush()
}

// offsetText prints -1 (none, unknown) as "-".
func offsetText(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

type groupsResetCmd struct {
	Group   string    `arg:"" help:"The group to reset."`
	ToStart bool      `xor:"to" required:"" help:"Replay: the group receives every event again."`
	ToEnd   bool      `xor:"to" required:"" help:"Skip everything the group has not read yet."`
	ToTime  time.Time `xor:"to" required:"" help:"Resume at the first event appended at or after this RFC 3339 time." format:"2006-01-02T15:04:05Z07:00"`
}

func (c groupsResetCmd) Run(e *env) error {
	adm, closeAdm, err := e.admin()
	if err != nil {
		return err
	}
	defer closeAdm()
	offsets, err := kafka.ResetGroup(e.ctx, adm, e.cfg.KafkaTopic, c.Group,
		kafka.ResetTarget{Start: c.ToStart, End: c.ToEnd, Time: c.ToTime})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(cmdOut, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "group %s reset in topic %s\nPARTITION\tOFFSET\n", c.Group, e.cfg.KafkaTopic)
	for _, p := range sortedKeys(offsets) {
		fmt.Fprintf(w, "%d\t%d\n", p, offsets[p])
	}
	return w.Flush()
}

// admin returns an admin client of the configured Kafka.
func (e *env) admin() (*kadm.Client, func(), error) {
	cl, err := e.kafkaClient()
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// kafkaClient returns a client of the configured Kafka, with the TLS and
// SASL settings a serving sidecar uses. The embedded broker lives inside a
// running sidecar, out of reach of another process.
func (e *env) kafkaClient() (*kgo.Client, error) {
	if len(e.cfg.KafkaBrokers) == 0 {
		return nil, errors.New("SIDECAR_KAFKA_BROKERS is not set: operator commands need the Kafka cluster, the embedded broker lives inside a running sidecar")
	}
	kcfg, err := e.cfg.KafkaClientConfig(e.log)
	if err != nil {
		return nil, err
	}
	return kafka.NewAdminClient(kcfg)
}
