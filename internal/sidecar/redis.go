package sidecar

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Schemes of SIDECAR_REDIS_URL that name a Redis Cluster.
const (
	clusterScheme    = "redis+cluster"
	clusterTLSScheme = "rediss+cluster"
)

// NewRedisClient returns a client for a SIDECAR_REDIS_URL: a single node
// for redis:// and rediss:// (go-redis's ParseURL), a cluster for
// redis+cluster:// and rediss+cluster:// with a comma-separated list of
// seed nodes, for example
//
//	redis+cluster://user:pass@10.0.0.1:6379,10.0.0.2:6379?dial_timeout=3s
//
// The query takes the options of go-redis's ParseClusterURL. tlsConfig,
// when not nil, may adjust the TLS settings of a rediss URL before the
// client is made. Errors never repeat the URL, which may hold a password.
func NewRedisClient(rawURL string, tlsConfig func(*tls.Config) error) (redis.UniversalClient, error) {
	single, cluster, err := parseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	if cluster != nil {
		if cluster.TLSConfig != nil && tlsConfig != nil {
			if err := tlsConfig(cluster.TLSConfig); err != nil {
				return nil, err
			}
		}
		return redis.NewClusterClient(cluster), nil
	}
	if single.TLSConfig != nil && tlsConfig != nil {
		if err := tlsConfig(single.TLSConfig); err != nil {
			return nil, err
		}
	}
	return redis.NewClient(single), nil
}

// parseRedisURL returns the options of a single node or of a cluster.
func parseRedisURL(rawURL string) (single *redis.Options, cluster *redis.ClusterOptions, err error) {
	defer func() {
		// url.Error quotes the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
	}()
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, nil, errors.New("not a Redis URL: want redis://, rediss://, redis+cluster:// or rediss+cluster://")
	}
	switch scheme {
	case clusterScheme, clusterTLSScheme:
		opts, err := parseClusterURL(strings.TrimSuffix(scheme, "+cluster"), rest)
		return nil, opts, err
	case "redis", "rediss", "unix":
		opts, err := redis.ParseURL(rawURL)
		return opts, nil, err
	}
	return nil, nil, fmt.Errorf("scheme %q is not one of redis, rediss, redis+cluster, rediss+cluster", scheme)
}

// parseClusterURL reads "[user:pass@]host:port,host:port[/][?query]" into
// go-redis's cluster form, the first node in the host and the others as
// addr parameters.
func parseClusterURL(scheme, rest string) (*redis.ClusterOptions, error) {
	hostsEnd := strings.IndexAny(rest, "/?")
	if hostsEnd < 0 {
		hostsEnd = len(rest)
	}
	authority, tail := rest[:hostsEnd], rest[hostsEnd:]
	path, query, _ := strings.Cut(tail, "?")
	if path != "" && path != "/" && path != "/0" {
		return nil, fmt.Errorf("a Redis Cluster has only database 0, got path %q", path)
	}
	userinfo, hosts := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hosts = authority[:at+1], authority[at+1:]
	}
	var nodes []string
	for h := range strings.SplitSeq(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			nodes = append(nodes, h)
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("a cluster URL needs at least one host:port")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("cluster URL query: %w", err)
	}
	for _, n := range nodes[1:] {
		q.Add("addr", n)
	}
	u := scheme + "://" + userinfo + nodes[0]
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return redis.ParseClusterURL(u)
}
