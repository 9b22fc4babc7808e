// Package store is the event store: the append protocol over the Redis
// version index (package versions) and the Kafka topic (package kafka), the
// rebuild of the index from the topic, and subscriptions.
//
// # Append
//
// An append takes a per-stream lock in the process, reserves its versions
// in the index with a lease, produces one record holding all of its events
// to the stream's partition, and commits the reservation with the record's
// offset. A definite refusal by the broker releases the reservation. An
// unknown outcome (a timeout, a lost connection) is resolved by looking for
// the reservation's token in the partition: found, the append is committed;
// not found, it is released. A reservation whose lease ran out, because its
// sidecar died, is resolved the same way by the next writer of the stream.
//
// Produce and commit run detached from the caller's context, bounded by the
// delivery timeout, so a client that hangs up mid-append leaves no stream
// blocked.
//
// # Rebuild
//
// When the index has no epoch (Redis lost data, or it is new), appends are
// refused as unavailable and the index is rebuilt from the topic: every
// partition is read from its first offset and folded into the index, which
// only ever raises a stream's version. Before the epoch is written the
// rebuild waits one lease and reads what landed meanwhile, so an append that
// was in flight when Redis lost its data is indexed too.
//
// # Limitations
//
// A sidecar that stalls longer than the lease between its last lease check
// and the broker's write can land a record that the index no longer
// expects; the stream's next writer has then moved on. Keep the delivery
// timeout well below the lease. A stream whose last record is far behind the
// end of its partition makes resolving an expired lease read that distance.
package store
