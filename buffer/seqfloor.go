package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"
)

// No id leaves the box twice. A fresh file (a lost, emptied or replaced
// one, a reinstalled box) numbers its seqs above three floors, whichever
// is highest:
//
//   - the clock, in microseconds since 1970 (a box with a real-time clock);
//   - the build's date (buildDate, stamped by the Makefile, else the VCS
//     time Go records in the binary): a box that boots at 1970 or at its
//     image's date still numbers above anything a build older than this
//     one can have numbered from its clock;
//   - the floor file beside the buffer (path + ".seqfloor"): a seq above
//     every seq this box has handed out, kept when the buffer file is
//     lost and written durably but rarely: it reserves FloorStep seqs at
//     a time, so it costs one small in-place write and fsync per 65,536
//     records (Stats().FloorWrites counts them; flash is a consumable).
//
// The uplink adds a fourth from outside: the last seq its retained status
// says was published (EnsureAbove).

// FloorStep is how many seqs one write of the floor file reserves.
const FloorStep = 1 << 16

// buildDate is the build's date (RFC 3339), stamped with
// -ldflags "-X tidegate/buffer.buildDate=...": see the Makefile.
var buildDate string

// clockFloor is the earliest time this binary can be running at: its
// stamped build date, else the VCS commit time Go embeds.
func clockFloor(stamp string, info *debug.BuildInfo) time.Time {
	if t, err := time.Parse(time.RFC3339, stamp); err == nil {
		return t
	}
	if info != nil {
		for _, s := range info.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					return t
				}
			}
		}
	}
	return time.Time{}
}

func buildFloor() uint64 {
	info, _ := debug.ReadBuildInfo()
	t := clockFloor(buildDate, info)
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixMicro())
}

// The floor file: 8 bytes of floor (big-endian), a CRC-32C of them, and a
// version byte: 13 bytes, always rewritten in place (no new blocks, so a
// full disk cannot refuse it once it exists). A torn or rotten file reads
// as 0: the other floors still hold.
const floorLen = 13

func floorPath(path string) string { return path + ".seqfloor" }

func readFloor(path string) uint64 {
	b, err := os.ReadFile(floorPath(path))
	if err != nil || len(b) != floorLen || b[12] != 1 {
		return 0
	}
	if crc32.Checksum(b[:8], crcTable) != binary.BigEndian.Uint32(b[8:12]) {
		return 0
	}
	return binary.BigEndian.Uint64(b[:8])
}

func writeFloor(path string, floor uint64) error {
	var b [floorLen]byte
	binary.BigEndian.PutUint64(b[:8], floor)
	binary.BigEndian.PutUint32(b[8:12], crc32.Checksum(b[:8], crcTable))
	b[12] = 1
	fp := floorPath(path)
	_, statErr := os.Stat(fp)
	f, err := os.OpenFile(fp, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b[:], 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && errors.Is(statErr, os.ErrNotExist) {
		syncDir(filepath.Dir(fp))
	}
	return err
}

// ensureFloor makes the floor file say at least need, reserving FloorStep
// more; the committer calls it before a commit that could assign seqs up
// to need, so that no seq on disk is ever above the floor on disk.
func (b *Buffer) ensureFloor(need uint64) error {
	if b.opt.NoRecover || b.removeOnClose || need <= b.floor {
		return nil
	}
	f := need + uint64(b.opt.floorStep)
	if err := writeFloor(b.path, f); err != nil {
		return classify(fmt.Errorf("writing the seq floor file: %w", err))
	}
	b.floor = f
	b.floorWrites.Add(1)
	return nil
}
