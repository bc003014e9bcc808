package water

import (
	"math"
	"math/rand/v2"
	"time"
)

// diurnal is the hourly share of a household's daily volume, hours 0..23
// (DAIAD trial, 91 homes; ../shared/meters/README.md), in %.
var diurnal = [24]float64{
	2.1, 1.2, 1.0, 0.8, 0.6, 0.8, 3.8, 5.8, 5.1, 5.5, 6.2, 5.9,
	5.2, 4.8, 5.0, 4.4, 4.0, 4.2, 5.1, 6.6, 7.3, 6.1, 4.9, 3.8,
}

// event is one end use: water drawn at a constant rate for a while.
type event struct {
	at   time.Duration // offset into the local day
	dur  time.Duration
	rate float64 // m3/h
}

// endUse is one kind of fixture: SIMDEUM parameters (Netherlands) and
// measured medians quoted in the meters README.
type endUse struct {
	perDay       float64 // mean uses a day per person (or per household when perHouse)
	perHouse     bool
	minL, maxL   float64 // volume of one use, litres
	minLS, maxLS float64 // rate, litres a second
	fills        int     // appliances fill several times per cycle
	fillGap      time.Duration
}

var household = []endUse{
	{perDay: 5.9, minL: 6, maxL: 9, minLS: 0.042, maxLS: 0.14},                                                         // WC
	{perDay: 0.72, minL: 45, maxL: 75, minLS: 0.12, maxLS: 0.14},                                                       // shower
	{perDay: 4, minL: 0.6, maxL: 3.3, minLS: 0.04, maxLS: 0.083},                                                       // bathroom tap
	{perDay: 11.5, perHouse: true, minL: 0.7, maxL: 7.6, minLS: 0.05, maxLS: 0.17},                                     // kitchen tap
	{perDay: 0.3, perHouse: true, minL: 11, maxL: 14, minLS: 0.167, maxLS: 0.167, fills: 4, fillGap: 12 * time.Minute}, // washing machine
	{perDay: 0.2, perHouse: true, minL: 3, maxL: 4, minLS: 0.1, maxLS: 0.1, fills: 4, fillGap: 15 * time.Minute},       // dishwasher
	{perDay: 0.04, minL: 100, maxL: 140, minLS: 0.2, maxLS: 0.2},                                                       // bath
}

var workplace = []endUse{
	{perDay: 2.5, minL: 6, maxL: 9, minLS: 0.042, maxLS: 0.14},                  // WC
	{perDay: 3, minL: 0.6, maxL: 3.3, minLS: 0.04, maxLS: 0.083},                // hand basin
	{perDay: 6, perHouse: true, minL: 0.7, maxL: 7.6, minLS: 0.05, maxLS: 0.17}, // kitchen / cleaning tap
}

// process is a small factory's batch fills.
var process = endUse{perDay: 6, perHouse: true, minL: 150, maxL: 300, minLS: 0.4, maxLS: 0.6}

// dayEvents draws one local day's end uses for the profile. weekday decides
// whether shops and factories open.
func dayEvents(cfg Config, r *rand.Rand, weekday time.Weekday) []event {
	var out []event
	add := func(u endUse, people float64, hours func(*rand.Rand) time.Duration) {
		mean := u.perDay * cfg.UseScale
		if !u.perHouse {
			mean *= people
		}
		for n := poisson(r, mean); n > 0; n-- {
			at := hours(r)
			fills := max(u.fills, 1)
			for f := 0; f < fills; f++ {
				vol := u.minL + r.Float64()*(u.maxL-u.minL)
				rate := u.minLS + r.Float64()*(u.maxLS-u.minLS)
				d := time.Duration(vol / rate * float64(time.Second)).Round(time.Second)
				out = append(out, event{at: at + time.Duration(f)*u.fillGap, dur: max(d, time.Second), rate: rate * 3.6})
			}
		}
	}
	switch cfg.Profile {
	case ProfileFlat:
		for _, u := range household {
			add(u, float64(cfg.Persons), diurnalHour)
		}
	case ProfileShop:
		if weekday != time.Sunday {
			for _, u := range workplace {
				add(u, float64(cfg.Persons), openHours(8, 19))
			}
		}
	case ProfileFactory:
		if weekday != time.Saturday && weekday != time.Sunday {
			for _, u := range workplace {
				add(u, float64(cfg.Persons)*5, openHours(7, 17))
			}
			add(process, 1, openHours(7, 16))
		}
	}
	return out
}

// diurnalHour picks a start time weighted by the household diurnal curve.
func diurnalHour(r *rand.Rand) time.Duration {
	x := r.Float64() * 100
	h := 0
	for ; h < 23 && x >= diurnal[h]; h++ {
		x -= diurnal[h]
	}
	return time.Duration(h)*time.Hour + time.Duration(r.Int64N(int64(time.Hour)))
}

func openHours(from, to int) func(*rand.Rand) time.Duration {
	return func(r *rand.Rand) time.Duration {
		return time.Duration(from)*time.Hour + time.Duration(r.Int64N(int64(time.Duration(to-from)*time.Hour)))
	}
}

// poisson draws a count with the given mean (Knuth; means here are small).
func poisson(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
