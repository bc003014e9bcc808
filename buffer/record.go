package buffer

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"time"

	"tidegate/reading"
)

// Record encoding, version 1. Every stored value starts with the format
// version byte and the kind byte, so a later tidegate can read an older file
// (it dispatches on the version) and eviction can classify a record without
// decoding it. Optional fields are announced in a presence mask and only
// written when non-zero: an interval reading is ~100 bytes instead of the
// ~400 its JSON takes. Floats are stored bit-exact (totals must round-trip).
//
//	value   = version:u8 kind:u8 payload
//	reading = mask:uvarint meter:str [received:time] [meterTime:time] [has:uvarint]
//	          [forward:f64] [reverse:f64] [net:f64] [flow:f64] [temp:f64] [battery:uvarint]
//	          [status:uvarint] [quality:u8] [error:str] [raw:bytes] [filter] [storage:u8]
//	filter  = mask:uvarint [start:time] [consumption:f64] [reverse:f64] [phantom:f64] [flags:uvarint]
//	summary = meter:str day:str mask:uvarint [consumption:f64] [phantom:f64] [backflow:f64]
//	          [minNightFlow:f64] [peakFlow:f64] [hoursWithUse:varint] [flags:uvarint]
//	event   = mask:uvarint [time:time] [meter:str] [type:str] [message:str] [attrs:uvarint (key:str value:str)*]
//	time    = seconds:varint nanos:uvarint
//	str     = len:uvarint bytes
//	f64     = 8 bytes little endian IEEE 754
const formatV1 = 1

// Version 2 is version 1 with a CRC-32C of the whole value (version byte
// included) appended, little endian: a byte gone bad in a records page
// makes its record undecodable (buffer_undecodable, with its seq) instead
// of a reading with wrong values. Files written before it keep their
// version 1 records, which decode as they always did.
//
//	value   = 2:u8 kind:u8 payload crc32c:u32
const formatV2 = 2

// Version 3 is how a record is stored in the buffer: version 2 whose CRC
// also covers the record's own seq (its bbolt key, 8 bytes big-endian,
// hashed before the value). A key that a bad byte moved to another seq no
// longer matches its value: the record is undecodable under the wrong id
// instead of one reading's values going out under another's id. Encode
// (side state, no seq) keeps writing version 2.
//
//	value   = 3:u8 kind:u8 payload crc32c(seq:u64be value-without-crc):u32
const formatV3 = 3

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// seal makes an encoded record (version 2, from appendRecord) the stored
// version 3 bound to seq, in place. Anything else is left as it is.
func seal(v []byte, seq uint64) {
	if len(v) < 6 || (v[0] != formatV2 && v[0] != formatV3) {
		return
	}
	v[0] = formatV3
	binary.LittleEndian.PutUint32(v[len(v)-4:], seqCRC(seq, v[:len(v)-4]))
}

func seqCRC(seq uint64, body []byte) uint32 {
	var k [8]byte
	putSeq(k[:], seq)
	return crc32.Update(crc32.Checksum(k[:], crcTable), crcTable, body)
}

// reseal binds a stored record to a new seq (renumbering, seqfloor.go) if
// it is intact under its old one. A damaged record keeps its bytes, so
// that it stays undecodable: resealing would launder the damage.
func reseal(v []byte, from, to uint64) []byte {
	if len(v) < 6 || v[0] != formatV3 || seqCRC(from, v[:len(v)-4]) != binary.LittleEndian.Uint32(v[len(v)-4:]) {
		return v
	}
	out := append([]byte(nil), v...)
	seal(out, to)
	return out
}

// decodeStored decodes the value stored under seq: version 3 is checked
// against seq, older versions as well as they can be (version 2 against
// its own bytes, version 1 by decoding).
func decodeStored(seq uint64, b []byte) (reading.Record, error) {
	return decodeWith(b, seq, true)
}

// MaxRecordBytes bounds one encoded record; Raw frames are the only thing
// that could approach it.
const MaxRecordBytes = 1 << 20

const (
	rmReceived uint64 = 1 << iota
	rmMeterTime
	rmHas
	rmForward
	rmReverse
	rmNet
	rmFlow
	rmTemperature
	rmBattery
	rmStatus
	rmQuality
	rmError
	rmRaw
	rmFilter
	rmStorage   // added after the first release: older files never set it
	rmMeterZone // the offset the meter's clock was placed at, s east of UTC (issue 25)
	rmAll       = rmMeterZone<<1 - 1
)

const (
	fmStart uint64 = 1 << iota
	fmConsumption
	fmReverse
	fmPhantom
	fmFlags
	fmAll = fmFlags<<1 - 1
)

const (
	smConsumption uint64 = 1 << iota
	smPhantom
	smBackflow
	smMinNightFlow
	smPeakFlow
	smHours
	smFlags
	smAll = smFlags<<1 - 1
)

const (
	emTime uint64 = 1 << iota
	emMeter
	emType
	emMessage
	emAttrs
	emAll = emAttrs<<1 - 1
)

// appendRecord encodes r (its Seq is not stored: it is the key) after dst.
func appendRecord(dst []byte, r *reading.Record) ([]byte, error) {
	start := len(dst)
	dst = append(dst, formatV2, byte(r.Kind))
	switch r.Kind {
	case reading.KindReading, reading.KindBilling:
		if r.Reading == nil {
			return dst[:start], fmt.Errorf("%w: %s record without Reading", ErrInvalidRecord, r.Kind)
		}
		dst = appendReading(dst, r.Reading)
	case reading.KindSummary:
		if r.Summary == nil {
			return dst[:start], fmt.Errorf("%w: summary record without Summary", ErrInvalidRecord)
		}
		dst = appendSummary(dst, r.Summary)
	case reading.KindEvent:
		if r.Event == nil {
			return dst[:start], fmt.Errorf("%w: event record without Event", ErrInvalidRecord)
		}
		dst = appendEvent(dst, r.Event)
	default:
		return dst[:start], fmt.Errorf("%w: unknown kind %d", ErrInvalidRecord, r.Kind)
	}
	if len(dst)-start+4 > MaxRecordBytes {
		return dst[:start], fmt.Errorf("%w: %d bytes encoded, limit %d", ErrInvalidRecord, len(dst)-start+4, MaxRecordBytes)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable)), nil
}

func appendReading(dst []byte, x *reading.Reading) []byte {
	var m uint64
	set := func(bit uint64, on bool) {
		if on {
			m |= bit
		}
	}
	set(rmReceived, !x.Received.IsZero())
	set(rmMeterTime, !x.MeterTime.IsZero())
	set(rmHas, x.Has != 0)
	set(rmForward, math.Float64bits(x.Forward) != 0)
	set(rmReverse, math.Float64bits(x.Reverse) != 0)
	set(rmNet, math.Float64bits(x.Net) != 0)
	set(rmFlow, math.Float64bits(x.Flow) != 0)
	set(rmTemperature, math.Float64bits(x.Temperature) != 0)
	set(rmBattery, x.BatteryMV != 0)
	set(rmStatus, x.Status != 0)
	set(rmQuality, x.Quality != 0)
	set(rmError, x.Error != "")
	set(rmRaw, len(x.Raw) > 0)
	set(rmFilter, x.Filter != nil)
	set(rmStorage, x.Storage != 0)
	_, zone := x.MeterTime.Zone()
	set(rmMeterZone, !x.MeterTime.IsZero() && zone != 0)
	dst = binary.AppendUvarint(dst, m)
	dst = appendString(dst, x.Meter)
	if m&rmReceived != 0 {
		dst = appendTime(dst, x.Received)
	}
	if m&rmMeterTime != 0 {
		dst = appendTime(dst, x.MeterTime)
	}
	if m&rmHas != 0 {
		dst = binary.AppendUvarint(dst, uint64(x.Has))
	}
	for i, f := range [...]float64{x.Forward, x.Reverse, x.Net, x.Flow, x.Temperature} {
		if m&(rmForward<<i) != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
	}
	if m&rmBattery != 0 {
		dst = binary.AppendUvarint(dst, uint64(x.BatteryMV))
	}
	if m&rmStatus != 0 {
		dst = binary.AppendUvarint(dst, uint64(x.Status))
	}
	if m&rmQuality != 0 {
		dst = append(dst, byte(x.Quality))
	}
	if m&rmError != 0 {
		dst = appendString(dst, x.Error)
	}
	if m&rmRaw != 0 {
		dst = appendString(dst, string(x.Raw))
	}
	if f := x.Filter; f != nil {
		var fm uint64
		if !f.Start.IsZero() {
			fm |= fmStart
		}
		for i, v := range [...]float64{f.Consumption, f.Reverse, f.Phantom} {
			if math.Float64bits(v) != 0 {
				fm |= fmConsumption << i
			}
		}
		if f.Flags != 0 {
			fm |= fmFlags
		}
		dst = binary.AppendUvarint(dst, fm)
		if fm&fmStart != 0 {
			dst = appendTime(dst, f.Start)
		}
		for i, v := range [...]float64{f.Consumption, f.Reverse, f.Phantom} {
			if fm&(fmConsumption<<i) != 0 {
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
			}
		}
		if fm&fmFlags != 0 {
			dst = binary.AppendUvarint(dst, uint64(f.Flags))
		}
	}
	if m&rmStorage != 0 {
		dst = append(dst, x.Storage)
	}
	if m&rmMeterZone != 0 {
		dst = binary.AppendVarint(dst, int64(zone))
	}
	return dst
}

func appendSummary(dst []byte, s *reading.DailySummary) []byte {
	dst = appendString(dst, s.Meter)
	dst = appendString(dst, s.Day)
	floats := [...]float64{s.Consumption, s.Phantom, s.Backflow, s.MinNightFlow, s.PeakFlow}
	var m uint64
	for i, v := range floats {
		if math.Float64bits(v) != 0 {
			m |= smConsumption << i
		}
	}
	if s.HoursWithUse != 0 {
		m |= smHours
	}
	if s.Flags != 0 {
		m |= smFlags
	}
	dst = binary.AppendUvarint(dst, m)
	for i, v := range floats {
		if m&(smConsumption<<i) != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
	}
	if m&smHours != 0 {
		dst = binary.AppendVarint(dst, int64(s.HoursWithUse))
	}
	if m&smFlags != 0 {
		dst = binary.AppendUvarint(dst, uint64(s.Flags))
	}
	return dst
}

func appendEvent(dst []byte, e *reading.Event) []byte {
	var m uint64
	if !e.Time.IsZero() {
		m |= emTime
	}
	if e.Meter != "" {
		m |= emMeter
	}
	if e.Type != "" {
		m |= emType
	}
	if e.Message != "" {
		m |= emMessage
	}
	if len(e.Attrs) > 0 {
		m |= emAttrs
	}
	dst = binary.AppendUvarint(dst, m)
	if m&emTime != 0 {
		dst = appendTime(dst, e.Time)
	}
	for i, s := range [...]string{e.Meter, e.Type, e.Message} {
		if m&(emMeter<<i) != 0 {
			dst = appendString(dst, s)
		}
	}
	if m&emAttrs != 0 {
		// Sorted so that equal events encode to equal bytes.
		keys := make([]string, 0, len(e.Attrs))
		for k := range e.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = binary.AppendUvarint(dst, uint64(len(keys)))
		for _, k := range keys {
			dst = appendString(dst, k)
			dst = appendString(dst, e.Attrs[k])
		}
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// decodeRecord is the inverse of appendRecord. It never retains b (values
// read from bbolt live in its mmap), and it allocates at most in proportion
// to len(b), whatever the bytes say.
func decodeRecord(b []byte) (reading.Record, error) { return decodeWith(b, 0, false) }

func decodeWith(b []byte, seq uint64, haveSeq bool) (reading.Record, error) {
	d := decoder{b: b}
	var r reading.Record
	version := d.byte()
	kind := reading.Kind(d.byte())
	if d.err != nil {
		return r, d.err
	}
	switch version {
	case formatV1:
	case formatV2:
		if len(b) < 6 {
			return r, fmt.Errorf("%w: %d bytes, too short for a checksum", ErrDecode, len(b))
		}
		body := b[:len(b)-4]
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
			return r, fmt.Errorf("%w: checksum mismatch", ErrDecode)
		}
		d.b = body[2:]
	case formatV3:
		if !haveSeq {
			return r, fmt.Errorf("%w: a stored record (version 3) is checked against its seq", ErrDecode)
		}
		if len(b) < 6 {
			return r, fmt.Errorf("%w: %d bytes, too short for a checksum", ErrDecode, len(b))
		}
		body := b[:len(b)-4]
		if seqCRC(seq, body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
			return r, fmt.Errorf("%w: checksum mismatch under seq %d (the record or its key is damaged)", ErrDecode, seq)
		}
		d.b = body[2:]
	default:
		return r, fmt.Errorf("%w: format version %d, this build reads up to %d", ErrDecode, version, formatV3)
	}
	r.Kind = kind
	switch kind {
	case reading.KindReading, reading.KindBilling:
		r.Reading = d.reading()
	case reading.KindSummary:
		r.Summary = d.summary()
	case reading.KindEvent:
		r.Event = d.event()
	default:
		return r, fmt.Errorf("%w: unknown kind %d", ErrDecode, kind)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(d.b))
	}
	if d.err != nil {
		return reading.Record{}, d.err
	}
	return r, nil
}

// recordKind reads the kind byte without decoding; 0 when b is too short.
func recordKind(b []byte) reading.Kind {
	if len(b) < 2 {
		return 0
	}
	return reading.Kind(b[1])
}

// readingMeter returns the meter id of an encoded reading without decoding
// the rest, for thinning per meter. It does not copy: use it within the tx.
func readingMeter(b []byte) []byte {
	if len(b) < 2 {
		return nil
	}
	d := decoder{b: b[2:]}
	d.uvarint()
	return d.bytes()
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or malformed %s", ErrDecode, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) f64() float64 {
	if len(d.b) < 8 {
		d.fail("float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// bytes returns a length-prefixed field; the length is checked against what
// is left before anything is allocated.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("string length")
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) time() time.Time {
	s := d.varint()
	ns := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	// time.Unix overflows past this; no time.Time encodes beyond it.
	const maxUnix = math.MaxInt64 - 62135596800
	if ns >= 1e9 || s > maxUnix {
		d.fail("time")
		return time.Time{}
	}
	t := time.Unix(s, int64(ns)).UTC()
	if t.IsZero() {
		// The zero time is never written (its presence bit is clear), so
		// its bytes can only be malformed input.
		d.fail("time")
	}
	return t
}

func (d *decoder) mask(all uint64, what string) uint64 {
	m := d.uvarint()
	if m&^all != 0 {
		d.fail(what + " mask")
		return 0
	}
	return m
}

func (d *decoder) small(max uint64, what string) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail(what)
		return 0
	}
	return v
}

func (d *decoder) reading() *reading.Reading {
	m := d.mask(rmAll, "reading")
	x := &reading.Reading{Meter: d.string()}
	if m&rmReceived != 0 {
		x.Received = d.time()
	}
	if m&rmMeterTime != 0 {
		x.MeterTime = d.time()
	}
	if m&rmHas != 0 {
		x.Has = reading.Field(d.small(math.MaxUint16, "has"))
	}
	for i, p := range [...]*float64{&x.Forward, &x.Reverse, &x.Net, &x.Flow, &x.Temperature} {
		if m&(rmForward<<i) != 0 {
			*p = d.f64()
		}
	}
	if m&rmBattery != 0 {
		x.BatteryMV = uint16(d.small(math.MaxUint16, "battery"))
	}
	if m&rmStatus != 0 {
		x.Status = reading.Status(d.small(math.MaxUint16, "status"))
	}
	if m&rmQuality != 0 {
		x.Quality = reading.Quality(d.byte())
	}
	if m&rmError != 0 {
		x.Error = d.string()
	}
	if m&rmRaw != 0 {
		x.Raw = append([]byte(nil), d.bytes()...)
	}
	if m&rmFilter != 0 {
		fm := d.mask(fmAll, "filter")
		f := &reading.Filtered{}
		if fm&fmStart != 0 {
			f.Start = d.time()
		}
		for i, p := range [...]*float64{&f.Consumption, &f.Reverse, &f.Phantom} {
			if fm&(fmConsumption<<i) != 0 {
				*p = d.f64()
			}
		}
		if fm&fmFlags != 0 {
			f.Flags = reading.FilterFlags(d.small(math.MaxUint16, "filter flags"))
		}
		x.Filter = f
	}
	if m&rmStorage != 0 {
		x.Storage = d.byte()
	}
	if m&rmMeterZone != 0 {
		// meter_time says which offset it was placed at
		if z := d.varint(); z > -18*3600 && z < 18*3600 {
			x.MeterTime = x.MeterTime.In(time.FixedZone("", int(z)))
		} else {
			d.fail("meter zone")
		}
	}
	return x
}

func (d *decoder) summary() *reading.DailySummary {
	s := &reading.DailySummary{Meter: d.string(), Day: d.string()}
	m := d.mask(smAll, "summary")
	for i, p := range [...]*float64{&s.Consumption, &s.Phantom, &s.Backflow, &s.MinNightFlow, &s.PeakFlow} {
		if m&(smConsumption<<i) != 0 {
			*p = d.f64()
		}
	}
	if m&smHours != 0 {
		h := d.varint()
		if h < math.MinInt32 || h > math.MaxInt32 {
			d.fail("hours with use")
		}
		s.HoursWithUse = int(h)
	}
	if m&smFlags != 0 {
		s.Flags = reading.FilterFlags(d.small(math.MaxUint16, "summary flags"))
	}
	return s
}

func (d *decoder) event() *reading.Event {
	m := d.mask(emAll, "event")
	e := &reading.Event{}
	if m&emTime != 0 {
		e.Time = d.time()
	}
	for i, p := range [...]*string{&e.Meter, &e.Type, &e.Message} {
		if m&(emMeter<<i) != 0 {
			*p = d.string()
		}
	}
	if m&emAttrs != 0 {
		n := d.uvarint()
		// Each pair takes at least two length bytes: bound n before allocating.
		if d.err == nil && (n == 0 || n > uint64(len(d.b))/2) {
			d.fail("attribute count")
		}
		if d.err == nil {
			e.Attrs = make(map[string]string, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				k := d.string()
				if _, dup := e.Attrs[k]; dup {
					d.fail("attributes (duplicate key)")
				}
				e.Attrs[k] = d.string()
			}
		}
	}
	return e
}
