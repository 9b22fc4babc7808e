// Package kafka holds everything the event store does with Kafka: the
// topic and its settings, the record format, producing appends, reading
// partitions and tailing the whole topic.
//
// Every append is one record: its value is a RecordedAppend holding all of
// the append's events, its key the stream name. One record per append makes
// a multi-event append atomic without transactions (a record is written and
// read whole) and costs one produce per append, where one record per event
// in a transaction costs a transaction round trip per append besides.
//
// Persistent subscriptions read through a Consumer: a consumer group
// member that commits only what its caller asks, with rebalances held off
// while polled records are handed over, or a direct reader of given
// offsets. Each group has a parked log and a replay log beside the event
// topic (parked.go). Operator tools list groups with their lag, reset a
// group's offsets, describe the topic and raise its partition count.
package kafka
