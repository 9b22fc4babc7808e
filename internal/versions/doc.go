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
//	                       version, event count, partition, deadline in ms)
//	<prefix>{<stream>}:i   hash: event id -> "version:content hash"
//	<prefix>{<stream>}:x   sorted set: record offset scored by the version of
//	                       the record's first event
//	<prefix>epoch:{<tag>}  string: the epoch, one key per slot
//	<prefix>seal:<rebuild>:{<tag>}
//	                       string: the epoch a running rebuild renames into
//	                       the slot's epoch key when it ends; lost with the
//	                       slot's data, so a rebuild that outlived a loss
//	                       writes no epoch there
//
// The prefix is "es:" followed by the topic name and a colon, so several
// topics can share one Redis.
//
// # Limits
//
// Lua numbers are doubles: versions and offsets are exact up to 2^53, which
// the service enforces on input. Event ids are deduplicated per stream, not
// across streams.
package versions
