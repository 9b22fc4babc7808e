package sidecar

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRedisURL(t *testing.T) {
	tests := []struct {
		url       string
		addrs     []string // nil for a single node
		addr      string
		user      string
		password  string
		tls       bool
		dialAfter time.Duration
		err       string
	}{
		{url: "redis://127.0.0.1:6379/2", addr: "127.0.0.1:6379"},
		{url: "rediss://u:secret@h:6380/0", addr: "h:6380", user: "u", password: "secret", tls: true},
		{url: "redis+cluster://10.0.0.1:7000", addrs: []string{"10.0.0.1:7000"}},
		{url: "redis+cluster://a:1,b:2,c:3", addrs: []string{"a:1", "b:2", "c:3"}},
		{url: "redis+cluster://u:p%40ss@a:1,b:2/?dial_timeout=3s", addrs: []string{"a:1", "b:2"},
			user: "u", password: "p@ss", dialAfter: 3 * time.Second},
		{url: "redis+cluster://a:1,b:2/0", addrs: []string{"a:1", "b:2"}},
		{url: "rediss+cluster://a:1, b:2", addrs: []string{"a:1", "b:2"}, tls: true},
		{url: "redis+cluster://a:1/3", err: "only database 0"},
		{url: "redis+cluster://u:secret@", err: "at least one host"},
		{url: "redis+cluster://a:1?bogus=1", err: "bogus"},
		{url: "memcached://a:1", err: `scheme "memcached"`},
		{url: "u:secret@a:1", err: "not a Redis URL"},
		{url: "redis://u:secret@a:bad/0", err: "port"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			single, cluster, err := parseRedisURL(tt.url)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.addrs == nil {
				if cluster != nil || single.Addr != tt.addr || single.Username != tt.user ||
					single.Password != tt.password || (single.TLSConfig != nil) != tt.tls {
					t.Fatalf("single node options %+v, cluster %v", single, cluster)
				}
				return
			}
			if single != nil || !slices.Equal(cluster.Addrs, tt.addrs) || cluster.Username != tt.user ||
				cluster.Password != tt.password || (cluster.TLSConfig != nil) != tt.tls ||
				cluster.DialTimeout != tt.dialAfter {
				t.Fatalf("cluster options %+v (addrs %v), single %v", cluster, cluster.Addrs, single)
			}
		})
	}
}
