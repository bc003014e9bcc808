package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"tidegate/reading"
)

// The CSV formats of `tidegate filter`: samples in (what metersim samples
// writes and what a gateway's readings export as), filtered intervals out.
const (
	samplesHeader  = "time,meter,forward_m3,reverse_m3,flow_m3h"
	filteredHeader = "time,meter,consumption_m3,reverse_m3,phantom_m3,flags"
)

// ErrSampleRow is wrapped by every complaint about a samples row.
var ErrSampleRow = errors.New("bad samples row")

// parseSampleRow decodes one samples.csv row (without its newline) into a
// reading. An empty flow means the meter reported none; an empty reverse,
// a meter with one total and no reverse register (CJ/T 188).
func parseSampleRow(line []byte) (reading.Reading, error) {
	var f [5][]byte
	n := 0
	for n < 4 {
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			break
		}
		f[n], line = line[:i], line[i+1:]
		n++
	}
	f[n] = line
	n++
	if n != 5 || bytes.IndexByte(line, ',') >= 0 {
		return reading.Reading{}, fmt.Errorf("%w: want 5 fields (%s)", ErrSampleRow, samplesHeader)
	}
	t, err := time.Parse(time.RFC3339, string(f[0]))
	if err != nil {
		return reading.Reading{}, fmt.Errorf("%w: time %q is not RFC 3339", ErrSampleRow, f[0])
	}
	// The output is in UTC: 0000-01-01T00:30:00+01:00 would print as year
	// -1, which no RFC 3339 reader takes back.
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return reading.Reading{}, fmt.Errorf("%w: time %q is outside the years 0000-9999 in UTC", ErrSampleRow, f[0])
	}
	if len(f[1]) == 0 {
		return reading.Reading{}, fmt.Errorf("%w: empty meter", ErrSampleRow)
	}
	r := reading.Reading{Meter: string(f[1]), Received: t, Has: reading.HasForward | reading.HasReverse}
	vals := [3]*float64{&r.Forward, &r.Reverse, &r.Flow}
	names := [3]string{"forward_m3", "reverse_m3", "flow_m3h"}
	for i := range vals {
		s := f[2+i]
		if i >= 1 && len(s) == 0 {
			if i == 1 {
				r.Has &^= reading.HasReverse
			}
			continue
		}
		v, err := strconv.ParseFloat(string(s), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || (i < 2 && v < 0) {
			return reading.Reading{}, fmt.Errorf("%w: %s %q is not a finite number%s", ErrSampleRow, names[i], s,
				map[bool]string{true: " ≥ 0", false: ""}[i < 2])
		}
		*vals[i] = v
	}
	if len(f[4]) > 0 {
		r.Has |= reading.HasFlow
	}
	return r, nil
}

// appendFiltered writes one output row.
func appendFiltered(b []byte, r reading.Reading) []byte {
	b = r.Received.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, ',')
	b = append(b, r.Meter...)
	f := r.Filter
	for _, v := range [3]float64{f.Consumption, f.Reverse, f.Phantom} {
		b = append(b, ',')
		if v < 5e-7 {
			v = 0 // no "-0.000000"
		}
		b = strconv.AppendFloat(b, v, 'f', 6, 64)
	}
	b = append(b, ',')
	for i, n := range f.Flags.Names() {
		if i > 0 {
			b = append(b, '|')
		}
		b = append(b, n...)
	}
	return append(b, '\n')
}
