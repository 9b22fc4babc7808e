// Package versions is the Redis version index of the event store.
//
// Kafka holds every event; this index holds what an append needs to decide
// quickly and what a reader needs to find a stream's events, all derived from
// the topic and rebuilt from it when lost.
//
// # Vocabulary
//
//   - stream: a sequence of events of one aggregate, named by the aggregate id.
//   - version: the position of an event in its stream, from 1. A stream's
//     version is the number of events in it.
//   - expected version: what a writer believes the stream's version is.
//   - partition, offset, position: where a record lives in the topic. Every
//     append is one record; all records of a stream share one partition.
//   - reservation: the claim of an append on the versions after the current
//     one, with a token and a lease deadline. It is committed after Kafka
//     acknowledged the record or released after a definite failure.
//   - lease: how long a reservation blocks its stream. Past its deadline the
//     next writer resolves it against the partition.
//   - epoch: a marker written when the index was built. A missing epoch means
//     Redis lost data (amnesia); appends are refused until the index is
//     rebuilt from the topic.
//   - ledger: the names of the streams of one slot, kept in the slot's hash,
//     so that a stream whose own keys are gone is told from a new one.
//   - repair: reading one stream's records from its partition into the
//     index again, after the stream lost keys.
//   - watermark: per partition, the first offset a rebuild has not merged
//     yet. A rebuild that stops half way is resumed from its watermarks.
//
// # Keys
//
// Every key of one stream carries the stream's name, escaped, as a Redis
// Cluster hash tag, so each script touches one slot. The epoch is written
// once per slot (16384 small keys), each with a hash tag that maps to that
// slot, so a script finds the epoch of its stream's slot in the same slot.
// Losing any part of a node's data loses that node's epoch keys too, which is
// what makes the loss visible.
//
//	<prefix>{<stream>}:m   hash: v version, p partition, o last offset,
//	                       rt/rv/rn/rp/rd the reservation (token, first
//	                       version, event count, partition, deadline in
//	                       ms), rr set while a repair runs
//	<prefix>{<stream>}:i   hash: event id -> "version:content hash"
//	<prefix>{<stream>}:x   sorted set: record offset scored by the version of
//	                       the record's first event
//	<prefix>epoch:{<tag>}  string: the epoch, one key per slot
//	<prefix>slot:{<tag>}   hash: r the mark of the last rebuild started,
//	                       s<stream> the partition of each stream of the
//	                       slot that has events (the ledger)
//	<prefix>watermarks     hash: rebuild the id of the rebuild that owns
//	                       them, <partition> the next offset to merge
//	<prefix>seal:<rebuild>:{<tag>}
//	                       string: the epoch a running rebuild renames into
//	                       the slot's epoch key when it ends; lost with the
//	                       slot's data, so a rebuild that outlived a loss
//	                       writes no epoch there
//
// The prefix is "es:" followed by the topic name and a colon, so several
// topics can share one Redis.
//
// # Lost data
//
// Kafka is the truth: whatever the index loses, the topic still holds.
// What the index notices, and what it does not:
//
//   - A slot without its epoch key: Redis restarted without persistence,
//     FLUSHALL or FLUSHDB, a failover to an empty replica, a cluster node
//     replaced or a slot migrated without its keys, the key deleted or
//     evicted. Detected: reservations and commits in the slot answer
//     NOINDEX, and the store refuses appends until it rebuilt the index.
//     The rebuild resumes from the watermarks when every slot still holds
//     the mark of the rebuild that wrote them (only epoch keys were lost),
//     and reads the topic from the start otherwise.
//   - A stream that lost some of its own keys while its slot kept the
//     epoch: a meta without ids or offsets, ids or offsets without a meta
//     (deleted by hand, or evicted under an allkeys-* maxmemory policy).
//     Detected: the stream answers LOSTSTREAM, and the store refuses
//     appends to it alone and repairs it from its partition.
//   - A stream that lost all of its own keys while its slot kept the epoch
//     and the ledger. Detected the same way: the ledger still names it, so
//     an append that expects a new stream is refused instead of getting
//     version 1 again. Checking the ledger costs the reservation of a new
//     stream one hash look-up in the same slot; appends to existing streams
//     pay nothing for it.
//
// Not detected:
//
//   - Losing recent writes while older ones survive: a failover to a
//     replica that lags, a restart with appendfsync everysec that lost the
//     last second, a restore of an older snapshot. The epoch, the ledger and
//     the stream's keys survive together, consistently stale, so a stream
//     can look one or more appends behind the topic, and a writer whose
//     expectation matches the stale version is given versions the topic
//     already holds. Run Redis with appendfsync always and, with replicas,
//     WAIT or min-replicas-to-write; after an unplanned failover, run
//     `sidecar index rebuild --full`, which refuses appends on every
//     sidecar until it has read the whole topic again.
//   - A stream whose keys and ledger entry were both lost, or every stream
//     of a slot whose slot hash alone was lost (its epoch kept): such a
//     stream looks new. Losing the slot hash also loses its rebuild mark, so
//     the next rebuild reads from the start.
//   - Keys changed rather than lost, for example a version edited by hand.
//
// The watermarks describe rebuilds only: live appends do not advance them,
// so after a rebuild the index covers the topic up to its watermarks, and
// beyond them through the appends' own commits.
//
// # Memory
//
// Measured with MEMORY USAGE on Redis 7.0, one event per append, UUID event
// ids: a stream costs about 400 bytes of its own (its meta hash, and small
// ids and offsets structures) and about 70 bytes per event while its ids
// hash and offset set hold at most 128 entries, Redis's compact encoding;
// past that, about 210 bytes per event (hash table and skip list). A
// stream of 100 events took 7.3 KB, one of 1000 events 213 KB. Each stream
// also has a field in its slot's ledger, and each topic 16384 epoch keys
// (about 1 MB) whatever its size. Appends of several events cost one offset
// entry per append, not per event.
//
// # Limits
//
// Lua numbers are doubles: versions and offsets are exact up to 2^53, which
// the service enforces on input. Event ids are deduplicated per stream, not
// across streams.
package versions
