package versions

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// sealTTL bounds how long the prepared epochs of a rebuild that never
// finished (its sidecar died) stay in Redis.
const sealTTL = 7 * 24 * time.Hour

// sealKey holds, until the rebuild seal finishes, the epoch that rebuild
// seal writes into slot s. It shares the slot's hash tag.
func (k keys) sealKey(seal string, s uint16) string {
	return k.prefix + "seal:" + seal + ":{" + k.epochTags[s] + "}"
}

// PrepareSeal writes, per slot, the epoch that rebuild seal will put in
// place when it finishes, in a key of its own. Call it before the rebuild
// reads anything: a slot that loses its data afterwards loses the prepared
// epoch with it, and SealRebuild then leaves that slot without an epoch.
func (ix *Index) PrepareSeal(ctx context.Context, seal, epoch string) error {
	pipe := ix.rdb.Pipeline()
	for s := range uint16(numSlots) {
		pipe.Set(ctx, ix.keys.sealKey(seal, s), epoch, sealTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("prepare epoch: %w", err)
	}
	return nil
}

// SealRebuild moves every slot's prepared epoch (see PrepareSeal) into
// place and reports whether every slot had one. The move is one RENAME per
// slot, so a loss of the slot's data cannot come between finding the
// prepared epoch and writing it. A slot that lost its prepared epoch gets
// none, and appends to its streams stay refused until a rebuild that
// started after the loss seals it.
func (ix *Index) SealRebuild(ctx context.Context, seal string) (bool, error) {
	pipe := ix.rdb.Pipeline()
	renames := make([]interface{ Err() error }, numSlots)
	for s := range uint16(numSlots) {
		renames[s] = pipe.Rename(ctx, ix.keys.sealKey(seal, s), ix.keys.epochKey(s))
		// The epoch keeps no expiry of the prepared key.
		pipe.Persist(ctx, ix.keys.epochKey(s))
	}
	_, err := pipe.Exec(ctx)
	sealed := true
	for _, c := range renames {
		switch err := c.Err(); {
		case err == nil:
		case strings.Contains(err.Error(), "no such key"):
			sealed = false
		default:
			return false, fmt.Errorf("seal rebuild: %w", err)
		}
	}
	if err != nil && sealed {
		return false, fmt.Errorf("seal rebuild: %w", err)
	}
	return sealed, nil
}
