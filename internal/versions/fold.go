package versions

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// commitReserveScript runs commit.lua and then reserve.lua in one call, for
// the same stream: the commit of a stream's last append travels with the
// reservation of its next one, which halves the script calls of a stream
// written repeatedly. Each script runs as a function of its own arguments,
// so both sources stay as they are.
//
// ARGV: the number n of commit arguments, the n commit arguments, then the
// reserve arguments. Reply: the commit's reply and the reserve's.
var commitReserveScript = redis.NewScript(strings.Join([]string{
	"local function commit(ARGV)", commitSource, "end",
	"local function reserve(ARGV)", reserveSource, "end",
	`local n = tonumber(ARGV[1])
local c, r = {}, {}
for i = 1, n do c[i] = ARGV[1 + i] end
for i = n + 2, #ARGV do r[#r + 1] = ARGV[i] end
return {commit(c), reserve(r)}`,
}, "\n"))

// Commit is an append that landed at Offset and is not committed yet.
type Commit struct {
	Reservation Reservation
	Offset      int64
	Events      []EventKey
}

// CommitAndReserve commits c and then reserves req, of the same stream, in
// one script call. committed is what Commit would return for c; the
// reservation and err are what Reserve would return for req. When the call
// itself fails, committed and err are both that failure: the commit may or
// may not have run, and committing again is harmless.
func (ix *Index) CommitAndReserve(ctx context.Context, c Commit, req ReserveRequest) (
	committed error, _ Reservation, err error) {
	if c.Reservation.Stream != req.Stream {
		return nil, Reservation{}, fmt.Errorf("commit and reserve: streams %q and %q differ",
			c.Reservation.Stream, req.Stream)
	}
	sk := ix.keys.stream(req.Stream)
	reply, err := ix.batch.run(ctx, commitReserveScript, sk.list(), commitReserveArgs(c, req)...).Slice()
	if err != nil {
		err = fmt.Errorf("commit and reserve: %w", err)
		return err, Reservation{}, err
	}
	commitReply, reserveReply, ok := splitCommitReserve(reply)
	if !ok {
		err = fmt.Errorf("commit and reserve: unexpected reply %q", reply)
		return err, Reservation{}, err
	}
	res, err := parseReserve(req, reserveReply)
	return parseCommit(c.Reservation, commitReply), res, err
}

func commitReserveArgs(c Commit, req ReserveRequest) []any {
	args := make([]any, 1, 14+2*len(c.Events)+2*len(req.Events))
	args = commitArgs(args, c.Reservation, c.Offset, c.Events)
	args[0] = len(args) - 1
	return reserveArgs(args, req)
}

func splitCommitReserve(reply []any) (string, []string, bool) {
	if len(reply) != 2 {
		return "", nil, false
	}
	commit, ok := reply[0].(string)
	if !ok {
		return "", nil, false
	}
	parts, ok := reply[1].([]any)
	if !ok {
		return "", nil, false
	}
	reserve := make([]string, len(parts))
	for i, p := range parts {
		switch v := p.(type) {
		case string:
			reserve[i] = v
		case int64:
			reserve[i] = strconv.FormatInt(v, 10)
		default:
			return "", nil, false
		}
	}
	return commit, reserve, true
}
