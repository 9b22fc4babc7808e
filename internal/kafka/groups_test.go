package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// A group of the cluster that could not be described is reported apart
// and hides none of the topic's groups.
func TestLagsOfLeavesUnreadGroupsApart(t *testing.T) {
	at := func(topic string, commit, end int64) kadm.GroupLag {
		return kadm.GroupLag{topic: {0: {Topic: topic, Commit: kadm.Offset{At: commit},
			End: kadm.ListedOffset{Offset: end}, Lag: end - commit}}}
	}
	described := kadm.DescribedGroupLags{
		"read-model": {Group: "read-model", State: "Empty", Lag: at("events", 3, 5)},
		"elsewhere":  {Group: "elsewhere", State: "Stable", Lag: at("orders", 1, 1)},
		"loading":    {Group: "loading", DescribeErr: kerr.CoordinatorLoadInProgress},
		"gone":       {Group: "gone", FetchErr: kerr.GroupIDNotFound},
	}
	lags, unread := lagsOf(described, "events")
	if len(lags) != 1 || lags[0].Group != "read-model" || len(lags[0].Partitions) != 1 ||
		lags[0].Partitions[0].Lag != 2 {
		t.Fatalf("groups of the topic: %+v, want read-model alone with a lag of 2", lags)
	}
	if len(unread) != 2 || unread["loading"] != kerr.CoordinatorLoadInProgress || unread["gone"] != kerr.GroupIDNotFound {
		t.Fatalf("unread groups: %v, want loading and gone with their errors", unread)
	}
}
