package samples

import (
	"strconv"
	"time"
)

// SamplesHeader and TruthHeader are the CSV header rows Append* write under.
const (
	SamplesHeader = "time,meter,forward_m3,reverse_m3,flow_m3h\n"
	TruthHeader   = "time,meter,real_use_m3,real_backflow_m3,phantom_fwd_m3,phantom_rev_m3,leak,surge\n"
)

// AppendSample appends r as one samples.csv line.
func AppendSample(b []byte, r Row) []byte {
	b = r.Time.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, ',')
	b = append(b, r.Meter...)
	b = append(b, ',')
	b = strconv.AppendFloat(b, r.Forward, 'f', 4, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, r.Reverse, 'f', 4, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, r.Flow, 'f', 4, 64)
	return append(b, '\n')
}

// AppendTruth appends r's interval truth as one truth.csv line.
func AppendTruth(b []byte, r Row) []byte {
	b = r.Time.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, ',')
	b = append(b, r.Meter...)
	for _, v := range []float64{r.Truth.RealUse, r.Truth.RealBackflow, r.Truth.PhantomForward, r.Truth.PhantomReverse} {
		b = append(b, ',')
		b = strconv.AppendFloat(b, v, 'f', 7, 64)
	}
	b = append(b, ',')
	b = strconv.AppendBool(b, r.Truth.Leak)
	b = append(b, ',')
	b = strconv.AppendBool(b, r.Truth.Surge)
	return append(b, '\n')
}
