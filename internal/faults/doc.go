// Package faults proves the append protocol under real faults.
//
// Run starts sidecar binaries as child processes over a Kafka broker and a
// Redis of their own, and drives a load of appends through them: many
// streams, some contended by several writers on different sidecars, with
// deterministic event ids. Every acknowledged append and every append whose
// outcome is unknown (UNAVAILABLE, a deadline, a lost connection) is
// logged; writers retry unknown outcomes with the same event ids. Meanwhile
// it kills sidecars with SIGKILL and starts them again, flushes Redis,
// restarts Redis with nothing persisted, and stops and starts the broker.
//
// Afterwards every stream takes one more append, which must succeed within
// the lease: no stream is left blocked. Then the topic and the index are
// verified (package verify, and the `sidecar verify` command) and compared
// with the log: every acknowledged append is in its stream exactly once at
// its acknowledged version, every append of unknown outcome at most once
// and whole, and the topic holds nothing that no writer sent.
//
// The services are stopped, flushed and restarted: never point Run at
// Kafka or Redis that anything else uses.
package faults
