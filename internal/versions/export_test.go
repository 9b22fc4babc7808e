package versions

// StreamKeys returns the keys the index uses for a stream of topic: the
// stream's own (meta, ids, offsets), then its slot's epoch and slot hash.
func StreamKeys(topic, stream string) []string { return newKeys(topic).stream(stream).list() }

// SharedKeys returns the keys of topic that no single stream owns: every
// slot's epoch and slot hash, and the watermarks.
func SharedKeys(topic string) []string {
	k := newKeys(topic)
	out := make([]string, 0, 2*numSlots+1)
	for s := range uint16(numSlots) {
		out = append(out, k.epochKey(s), k.slotKey(s))
	}
	return append(out, k.watermarks())
}

// EpochKeys returns the epoch key of every slot of topic.
func EpochKeys(topic string) []string {
	k := newKeys(topic)
	out := make([]string, numSlots)
	for s := range uint16(numSlots) {
		out[s] = k.epochKey(s)
	}
	return out
}
