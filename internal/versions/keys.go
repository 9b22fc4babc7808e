package versions

import (
	"strconv"
	"strings"
	"sync"
)

// numSlots is the number of Redis Cluster hash slots.
const numSlots = 16384

// keys names every key the index uses for one topic.
type keys struct {
	prefix string
	// epochTags holds, for each slot, a hash tag that maps to that slot.
	epochTags *[numSlots]string
}

func newKeys(topic string) keys {
	return keys{prefix: "es:" + topic + ":", epochTags: slotTags()}
}

// streamKeys are the keys of one stream, in the order the scripts take them.
// epoch and slot are shared by every stream of the stream's slot.
type streamKeys struct {
	meta, ids, offsets, epoch, slot string
}

func (k keys) stream(name string) streamKeys {
	tag := escapeTag(name)
	base := k.prefix + "{" + tag + "}"
	s := slot(tag)
	return streamKeys{
		meta:    base + ":m",
		ids:     base + ":i",
		offsets: base + ":x",
		epoch:   k.epochKey(s),
		slot:    k.slotKey(s),
	}
}

func (sk streamKeys) list() []string {
	return []string{sk.meta, sk.ids, sk.offsets, sk.epoch, sk.slot}
}

func (k keys) epochKey(s uint16) string {
	return k.prefix + "epoch:{" + k.epochTags[s] + "}"
}

// slotKey is the hash of one slot's ledger of streams and rebuild marker.
func (k keys) slotKey(s uint16) string {
	return k.prefix + "slot:{" + k.epochTags[s] + "}"
}

// watermarks is the hash of how far a rebuild read each partition.
func (k keys) watermarks() string {
	return k.prefix + "watermarks"
}

// Fields of a slot hash: the rebuild marker, and one field per stream of
// the slot, named by ledgerPrefix and the stream's name.
const (
	slotRebuildField = "r"
	ledgerPrefix     = "s"
)

// streamPattern matches the meta keys of every stream, for scans.
func (k keys) streamPattern() string {
	return k.prefix + "{*}:m"
}

// escapeTag makes a stream name safe as a hash tag: Redis ends a tag at the
// first closing brace and treats an empty tag as none, so braces and the
// escape character itself are percent-encoded.
func escapeTag(name string) string {
	if !strings.ContainsAny(name, "{}%") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '{', '}', '%':
			b.WriteByte('%')
			b.WriteString(strconv.FormatUint(uint64(c)>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(c)&0xf, 16))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// slot is Redis Cluster's hash slot of a hash tag: CRC16 (XMODEM) modulo
// 16384.
func slot(tag string) uint16 {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % numSlots
}

// slotTags finds, once per process, a short tag for every slot by trying
// "0", "1", ... until each slot has one; it takes a few milliseconds.
var slotTags = sync.OnceValue(func() *[numSlots]string {
	var tags [numSlots]string
	found := 0
	for n := 0; found < numSlots; n++ {
		tag := strconv.FormatInt(int64(n), 36)
		if s := slot(tag); tags[s] == "" {
			tags[s] = tag
			found++
		}
	}
	return &tags
})
