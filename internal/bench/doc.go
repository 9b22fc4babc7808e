// Package bench measures the sidecar against the raw clients it is built
// on, on real Kafka and Redis, and reports every figure of one run in one
// table.
//
// The sidecar under test runs as a child process built from this
// repository, so that its CPU time and peak memory are its own, and is
// reached over gRPC on loopback like a real client reaches it. The raw
// baselines run in the harness: franz-go producing the same records with
// the sidecar's own producer settings, franz-go consuming the same topic,
// and go-redis sending the version index's scripts one EVALSHA at a time.
// Every event carries 1 KiB of fresh random bytes, which no compression
// codec can shrink.
//
// # Scenarios
//
//   - end to end: one writer appends and waits for a live SubscribeToAll
//     subscriber to receive the event; the delay after the append's
//     acknowledgement and after its sending.
//   - append: closed loops of 1, 8, 64 and 128 writers, each on its own
//     stream, through the sidecar; the same loops producing the sidecar's
//     record to a topic like the sidecar's, sending the reserve script,
//     sending the reserve and the commit script, and calling gRPC health
//     (the bare gRPC round trip). The loops run in alternating rounds so
//     that load from elsewhere on the machine falls on all of them alike.
//     The sidecar's CPU time is read from /proc around its rounds.
//   - contended append: 16 writers on 4 streams, each expecting the version
//     it saw last and reading the stream after a conflict.
//   - read: ReadStream of a 100-event stream whose records are spread over
//     a partition of 10 000, 100 000 and 1 000 000 records of other streams.
//   - catch-up: SubscribeToAll from the start of a topic of 1 000 000
//     events against a plain franz-go consumer of the same topic.
//
// Topics are fresh for every run and deleted with their index keys at the
// end; Redis is never flushed. A fresh topic's index is marked complete
// before its sidecar starts, which is what a sidecar would write after
// rebuilding an empty topic, so that no rebuild wait delays the start.
//
// Profile runs the sidecar in the harness's own process instead and
// writes CPU profiles of the append and catch-up loads; the client side
// carries the pprof label side=client, so `go tool pprof
// -tagignore=side=client` shows the sidecar alone.
package bench
