// Package projector keeps the read model of the moderation platform: the
// PostgreSQL table content, one row per content stream, with its author,
// its status (PENDING after ContentSubmitted, ANALYZED after
// ContentAnalyzed), the analysis result as jsonb, the version of the last
// event of the stream folded into the row, and the append times of the
// first and the last folded event.
//
// # Delivery and idempotence
//
// The projector is a member of a consumer group (read-model by default)
// of the sidecar's persistent subscription, filtered to the two event
// types it folds. It folds a batch of deliveries in one transaction and
// acks them once the transaction committed, so the group's committed
// offsets never pass an event that is not in the table. After a crash the
// sidecar delivers the unacked events again; every upsert is guarded by
// the row's version (ON CONFLICT ... WHERE content.version <
// EXCLUDED.version), so an event at or below the version a row reflects,
// redelivered or replayed, changes nothing. Streams are independent: the
// order of events across streams does not matter, and within a stream the
// sidecar keeps version order. Several projectors in one group share the
// topic's partitions.
//
// Timestamps come from the events, not from the clock, so a rebuild
// writes the same rows.
//
// A delivery with an event the projector cannot read (data that is not
// the documented JSON, or values PostgreSQL refuses) is parked in the
// group's parked deliveries with the reason and counts as acked; the
// stream's later events are still folded. Database failures are retried
// with backoff for as long as they last, and hold the subscription's
// window meanwhile.
//
// # Schema
//
// The schema is migrated with goose from SQL files embedded in the
// binary (migrations/), under an advisory lock, at every start.
//
// # Rebuild
//
// Rebuild replays the whole topic in a new group into a shadow table,
// content_rebuild, and swaps it in for the live table; see Rebuild for how
// it keeps what live projectors write meanwhile.
//
// # Limitations
//
//   - A rebuild must use a group that was never used: it treats the first
//     caught-up marker as the end of the replay, which covers the whole
//     topic only when the group's first assignment is every partition.
//     Each rebuild's group keeps its committed offsets and its parked and
//     replay topics in Kafka; delete them with Kafka's tools when done.
//   - While a rebuild swaps the tables, live projectors wait; the wait
//     lasts as long as reading the events appended during the replay.
//   - The swap drops the old table: views or foreign keys that depend on
//     it make the swap fail, and the rebuild with it.
//   - A parked ContentSubmitted leaves a row without an author once its
//     ContentAnalyzed is folded; replaying the parked delivery does not
//     help, as the row's version is already past it.
package projector
