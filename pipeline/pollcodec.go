package pipeline

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"time"

	"tidegate/buffer"
	"tidegate/reading"
)

// The journal's encoding of the polls the filter took. Each poll is coded
// against the same meter's previous poll in the journal since the last
// checkpoint: a reference to the meter and only the fields that changed
// (the time and the totals, as deltas): ~13 bytes a poll instead of the ~60
// of a full record. Smaller entries keep the tree a commit appends to (where
// the buffer keeps them, between the records) small, and cost less to
// delete at a checkpoint. A poll whose meter is new to the journal, or that
// carries what the deltas do not cover, is written as a full record.
//
//	entry   0x00 0x01, crc32 (IEEE, little-endian) of the polls, polls
//	poll    uvarint ref: 0 = uvarint length + buffer.Encode of a reading
//	        record (its meter joins the journal's meters, in order), else
//	        meter ref-1 and a delta: uvarint mask of the fields that
//	        changed, then each: times as a zigzag varint of nanoseconds
//	        from the previous poll's, floats as a zigzag varint of the
//	        difference of their IEEE bits, the rest as uvarints
//
// An entry that does not start with 0x00 is the layout before (uvarint
// length + buffer.Encode, per poll): read as such, so a journal written by
// the previous version is replayed too. Decoded, a poll is what
// buffer.Decode(buffer.Encode(poll)) gives: what the journal replayed before.
const (
	pollsMarker  = 0x00
	pollsVersion = 0x01
)

const (
	dReceived = 1 << iota
	dMeterTime
	dHas
	dForward
	dReverse
	dNet
	dFlow
	dTemperature
	dBattery
	dStatus
	dQuality
)

var errPolls = errors.New("filter journal entry malformed")

// pollCoder is the journal's meters and each one's last poll, on either
// side: the owner encoding, restore decoding.
type pollCoder struct {
	index map[string]int
	last  []reading.Reading
}

func (c *pollCoder) reset() {
	clear(c.index)
	c.last = c.last[:0]
}

// maxDeltaSec keeps a time's delta in nanoseconds within an int64.
const maxDeltaSec = 1 << 32

func timeDelta(a, b time.Time) (int64, bool) {
	if a.IsZero() || b.IsZero() {
		return 0, false
	}
	ds := b.Unix() - a.Unix()
	if ds > maxDeltaSec || ds < -maxDeltaSec {
		return 0, false
	}
	return ds*1e9 + int64(b.Nanosecond()-a.Nanosecond()), true
}

func addDelta(a time.Time, d int64) time.Time {
	s, ns := a.Unix()+d/1e9, int64(a.Nanosecond())+d%1e9
	if ns < 0 {
		s, ns = s-1, ns+1e9
	} else if ns >= 1e9 {
		s, ns = s+1, ns-1e9
	}
	return time.Unix(s, ns).UTC()
}

func sameTime(a, b time.Time) bool {
	return a.IsZero() == b.IsZero() && (a.IsZero() || a.Unix() == b.Unix() && a.Nanosecond() == b.Nanosecond())
}

func floatDelta(a, b float64) int64 {
	return int64(math.Float64bits(b) - math.Float64bits(a))
}

// append adds poll r (Raw already dropped) to dst.
func (c *pollCoder) append(dst []byte, r *reading.Reading) ([]byte, error) {
	if c.index == nil {
		c.index = map[string]int{}
	}
	i, known := c.index[r.Meter]
	if !known || r.Filter != nil || len(r.Raw) > 0 || r.Error != "" || r.Storage != 0 {
		return c.appendFull(dst, r, known)
	}
	p := &c.last[i]
	var mask uint64
	var dt, dmt int64
	if !sameTime(p.Received, r.Received) {
		var ok bool
		if dt, ok = timeDelta(p.Received, r.Received); !ok {
			return c.appendFull(dst, r, known)
		}
		mask |= dReceived
	}
	if !sameTime(p.MeterTime, r.MeterTime) {
		var ok bool
		if dmt, ok = timeDelta(p.MeterTime, r.MeterTime); !ok {
			return c.appendFull(dst, r, known)
		}
		mask |= dMeterTime
	}
	pf := [...]float64{p.Forward, p.Reverse, p.Net, p.Flow, p.Temperature}
	rf := [...]float64{r.Forward, r.Reverse, r.Net, r.Flow, r.Temperature}
	for k := range pf {
		if math.Float64bits(pf[k]) != math.Float64bits(rf[k]) {
			mask |= dForward << k
		}
	}
	if p.Has != r.Has {
		mask |= dHas
	}
	if p.BatteryMV != r.BatteryMV {
		mask |= dBattery
	}
	if p.Status != r.Status {
		mask |= dStatus
	}
	if p.Quality != r.Quality {
		mask |= dQuality
	}
	dst = binary.AppendUvarint(dst, uint64(i)+1)
	dst = binary.AppendUvarint(dst, mask)
	if mask&dReceived != 0 {
		dst = binary.AppendVarint(dst, dt)
	}
	if mask&dMeterTime != 0 {
		dst = binary.AppendVarint(dst, dmt)
	}
	if mask&dHas != 0 {
		dst = binary.AppendUvarint(dst, uint64(r.Has))
	}
	for k := range pf {
		if mask&(dForward<<k) != 0 {
			dst = binary.AppendVarint(dst, floatDelta(pf[k], rf[k]))
		}
	}
	if mask&dBattery != 0 {
		dst = binary.AppendUvarint(dst, uint64(r.BatteryMV))
	}
	if mask&dStatus != 0 {
		dst = binary.AppendUvarint(dst, uint64(r.Status))
	}
	if mask&dQuality != 0 {
		dst = binary.AppendUvarint(dst, uint64(r.Quality))
	}
	*p = *r
	return dst, nil
}

func (c *pollCoder) appendFull(dst []byte, r *reading.Reading, known bool) ([]byte, error) {
	v, err := buffer.Encode(&reading.Record{Kind: reading.KindReading, Reading: r})
	if err != nil {
		return dst, err
	}
	dst = binary.AppendUvarint(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	dst = append(dst, v...)
	c.remember(r, known)
	return dst, nil
}

func (c *pollCoder) remember(r *reading.Reading, known bool) {
	if known {
		c.last[c.index[r.Meter]] = *r
		return
	}
	c.index[r.Meter] = len(c.last)
	c.last = append(c.last, *r)
}

// entry frames the polls appended since the last entry.
func entry(polls []byte) []byte {
	e := make([]byte, 0, 6+len(polls))
	e = append(e, pollsMarker, pollsVersion)
	e = binary.LittleEndian.AppendUint32(e, crc32.ChecksumIEEE(polls))
	return append(e, polls...)
}

// decode calls fn with each poll of one journal entry, oldest first.
func (c *pollCoder) decode(e []byte, fn func(reading.Reading)) error {
	if c.index == nil {
		c.index = map[string]int{}
	}
	if len(e) == 0 || e[0] != pollsMarker {
		return decodeOld(e, fn)
	}
	if len(e) < 6 || e[1] != pollsVersion {
		return errPolls
	}
	polls := e[6:]
	if crc32.ChecksumIEEE(polls) != binary.LittleEndian.Uint32(e[2:6]) {
		return errPolls
	}
	return c.decodePolls(polls, fn)
}

func (c *pollCoder) decodePolls(polls []byte, fn func(reading.Reading)) error {
	if c.index == nil {
		c.index = map[string]int{}
	}
	d := pollReader{b: polls}
	for len(d.b) > 0 && d.err == nil {
		ref := d.uvarint()
		if ref == 0 {
			n := d.uvarint()
			if d.err != nil || n > uint64(len(d.b)) {
				return errPolls
			}
			rec, err := buffer.Decode(d.b[:n])
			d.b = d.b[n:]
			if err != nil || rec.Reading == nil {
				return errPolls
			}
			_, known := c.index[rec.Reading.Meter]
			c.remember(rec.Reading, known)
			fn(*rec.Reading)
			continue
		}
		if ref-1 >= uint64(len(c.last)) {
			return errPolls
		}
		r := c.last[ref-1]
		mask := d.uvarint()
		if mask&dReceived != 0 {
			r.Received = addDelta(r.Received, d.varint())
		}
		if mask&dMeterTime != 0 {
			r.MeterTime = addDelta(r.MeterTime, d.varint())
		}
		if mask&dHas != 0 {
			r.Has = reading.Field(d.uvarint())
		}
		fs := [...]*float64{&r.Forward, &r.Reverse, &r.Net, &r.Flow, &r.Temperature}
		for k, f := range fs {
			if mask&(dForward<<k) != 0 {
				*f = math.Float64frombits(math.Float64bits(*f) + uint64(d.varint()))
			}
		}
		if mask&dBattery != 0 {
			r.BatteryMV = uint16(d.uvarint())
		}
		if mask&dStatus != 0 {
			r.Status = reading.Status(d.uvarint())
		}
		if mask&dQuality != 0 {
			r.Quality = reading.Quality(d.uvarint())
		}
		if d.err != nil {
			return errPolls
		}
		r.Raw, r.Error, r.Storage, r.Filter = nil, "", 0, nil
		c.last[ref-1] = r
		fn(r)
	}
	if d.err != nil {
		return errPolls
	}
	return nil
}

// decodeOld reads an entry in the layout before: uvarint length +
// buffer.Encode, per poll.
func decodeOld(e []byte, fn func(reading.Reading)) error {
	for len(e) > 0 {
		n, k := binary.Uvarint(e)
		if k <= 0 || uint64(len(e)-k) < n {
			return errPolls
		}
		rec, err := buffer.Decode(e[k : k+int(n)])
		e = e[k+int(n):]
		if err != nil || rec.Reading == nil {
			continue // one unreadable poll; the next ones stand alone
		}
		fn(*rec.Reading)
	}
	return nil
}

type pollReader struct {
	b   []byte
	err error
}

func (d *pollReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errPolls
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *pollReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errPolls
		return 0
	}
	d.b = d.b[n:]
	return v
}
