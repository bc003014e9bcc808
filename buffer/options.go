package buffer

import (
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
)

// The defaults hold a 7-day broker outage of 250 meters polled every minute
// (2,520,000 interval readings) plus their daily billing reads, summaries
// and events, with room to spare.
const (
	DefaultMaxRecords = 2_800_000
	DefaultMaxBytes   = 512 << 20
	DefaultTimeout    = time.Second
	DefaultThinKeep   = 4
	DefaultEvictTo    = 0.9
	DefaultMaxBatch   = 8192
)

// Options configure Open. The zero value is the production default.
type Options struct {
	// MaxRecords and MaxBytes bound what the buffer holds (records not yet
	// acknowledged; bytes of their encoding and of the journal beside them,
	// journal.go). Going past either starts eviction. Zero means the default; the file itself is larger than
	// MaxBytes by bbolt's per-record overhead (about 25 bytes a record).
	MaxRecords int64
	MaxBytes   int64
	// MaxSize caps the bbolt file. Reaching it is handled like a full disk:
	// records are evicted and the commit retried. Zero means
	// 2×MaxBytes+64 MiB (so eviction by MaxBytes normally comes first);
	// negative means no cap.
	MaxSize int64
	// Timeout is how long Open waits for another process's lock on the file
	// before returning ErrLocked. Zero means DefaultTimeout.
	Timeout time.Duration
	// ThinKeep: when interval readings are thinned, one in ThinKeep of each
	// meter's readings is kept. Zero means DefaultThinKeep; 1 disables
	// thinning (oldest readings are then evicted outright).
	ThinKeep int
	// EvictTo is the fraction of the bounds eviction brings the buffer down
	// to, so that eviction runs in rounds rather than at every append. Zero
	// means DefaultEvictTo.
	EvictTo float64
	// MaxBatch is the most records one group commit takes. Zero means
	// DefaultMaxBatch.
	MaxBatch int
	// NoRecover makes Open return ErrCorrupt for a corrupt file instead of
	// moving it aside: for inspection tools, which must not change anything.
	NoRecover bool
	// Logger receives recovery and eviction reports. Nil means logrus's
	// standard logger.
	Logger logrus.FieldLogger

	// Clock is what a fresh file numbers its seqs from (microseconds since
	// 1970), so that a gateway whose file was lost never reuses a seq. Nil
	// means time.Now; a test may start at 1 with time.UnixMicro(0).
	Clock func() time.Time
	// hotSpan: seqs "records" takes before they move to the backlog
	// (backlog.go); zero means DefaultHotSpan. Small in tests, so that
	// every path meets records in both buckets.
	hotSpan int
	// inspect: an inspection tool (NoRecover) that gave no bounds: Stats
	// shows the bounds the daemon opened the file with.
	inspect bool
	// floorStep: seqs one write of the floor file reserves (seqfloor.go);
	// zero means FloorStep. Small in tests, so that a crash test crosses
	// many.
	floorStep int
	// salvagedCopy: Open is opening Salvaged's temporary copy; this is what
	// the salvage found.
	salvagedCopy *Recovery
}

// On a 32-bit box (armv7, mipsle) a process cannot map 1 GiB of one file:
// bbolt maps a file in powers of two up to 1 GiB, so a file past 512 MiB
// needs a 1 GiB mapping, and the commit that grows it fails. There the
// file is capped at MaxMap32 and the default bound on bytes held is smaller.
const (
	MaxMap32          = 512 << 20
	DefaultMaxBytes32 = 192 << 20
)

func (o Options) withDefaults() Options { return o.withDefaultsFor(strconv.IntSize) }

// forOpen is withDefaults for Open, which also notes an inspecting caller.
func (o Options) forOpen() Options {
	o.inspect = o.NoRecover && o.MaxRecords <= 0 && o.MaxBytes <= 0 && o.MaxSize == 0
	return o.withDefaults()
}

func (o Options) withDefaultsFor(intBits int) Options {
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
		if intBits == 32 {
			o.MaxBytes = DefaultMaxBytes32
		}
	}
	if o.MaxSize == 0 {
		o.MaxSize = 2*o.MaxBytes + 64<<20
	}
	if intBits == 32 && (o.MaxSize < 0 || o.MaxSize > MaxMap32) {
		o.MaxSize = MaxMap32
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ThinKeep <= 0 {
		o.ThinKeep = DefaultThinKeep
	}
	if o.EvictTo <= 0 || o.EvictTo >= 1 {
		o.EvictTo = DefaultEvictTo
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.hotSpan <= 0 {
		o.hotSpan = DefaultHotSpan
	}
	if o.floorStep <= 0 {
		o.floorStep = FloorStep
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = logrus.StandardLogger()
	}
	return o
}
