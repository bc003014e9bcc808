// Package samples runs a fleet of simulated meters without any serial I/O
// and yields their polled totals with the ground truth of every interval:
// the data the self-rotation filter is developed and scored on.
package samples

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"tidegate/simulator/water"
)

// Options choose the fleet and the run.
type Options struct {
	Days     int
	Seed     int64
	Meters   int
	Interval time.Duration // poll interval; 0 = a mix from 10 s to 15 min
	Start    time.Time     // zero = 2026-03-02T00:00:00Z
	// ReverseGain is the range reverse gains are drawn from; zero means
	// 0.6–1.0. 0.35–0.75 gives traces on which forward − reverse removes
	// about 56 % of the phantom, the reference.
	ReverseGain [2]float64
	// SmallBackflows adds short real backflows (20–200 L/h for 1–10 min,
	// 0.3–33 L) to about a third of the meters, half of them at times the
	// meter's surges come (pump switching, the night), so a filter must
	// tell them from a surge's reverse half. They are drawn from a
	// generator of their own: the rest of the fleet is the same with or
	// without them.
	SmallBackflows bool
}

// MeterSpec is one simulated meter of the fleet and how it is polled.
type MeterSpec struct {
	ID       string        `yaml:"id" json:"id"`
	Interval time.Duration `yaml:"interval" json:"interval"`
	Offset   time.Duration `yaml:"offset" json:"offset"` // first poll after the start
	Water    water.Config  `yaml:"water" json:"water"`
}

// MixedIntervals is the default poll mix: weighted towards slow polls so a
// many-meter run stays small, yet every interval class is present.
var MixedIntervals = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 5 * time.Minute, 15 * time.Minute, 15 * time.Minute}

// Fleet draws a varied fleet from the seed: flats, vacant flats, shops and a
// factory; cut-offs 1.5–8 L/h, reverse cut-offs up to twice the forward,
// reverse gains 0.6–1.0 (or Options.ReverseGain), totaliser steps 0.1–10 L; surges at night and at
// pump switching, periods 0.5–60 s (log-uniform: water hammer aliases);
// some leaks (registered: at least 3× the cut-off), real
// backflows, bursts and empty pipes.
func Fleet(o Options) []MeterSpec {
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0xF1EE7))
	u := func(a, b float64) float64 { return a + r.Float64()*(b-a) }
	pick := func(xs ...float64) float64 { return xs[r.IntN(len(xs))] }
	days := time.Duration(max(o.Days, 1)) * 24 * time.Hour
	specs := make([]MeterSpec, o.Meters)
	for i := range specs {
		var c water.Config
		switch i % 10 {
		case 6, 7:
			c.Profile = water.ProfileVacant
		case 8:
			c.Profile = water.ProfileShop
		case 9:
			c.Profile = water.ProfileFactory
		default:
			c.Profile = water.ProfileFlat
		}
		c.Persons = 1 + r.IntN(4)
		m := &c.Meter
		m.CutoffLH = pick(1.5, 3, 5, 8)
		m.ReverseCutoffLH = m.CutoffLH * pick(1, 1.5, 2)
		m.ForwardGain = u(0.98, 1.02)
		gmin, gmax := 0.6, 1.0
		if o.ReverseGain != [2]float64{} {
			gmin, gmax = o.ReverseGain[0], o.ReverseGain[1]
		}
		m.ReverseGain = u(gmin, gmax)
		m.ResolutionL = pick(0.1, 1, 1, 10)
		m.ClockDriftPPM = u(-50, 50)
		m.BatteryMV = u(3300, 3650)
		m.BatteryDropMV = u(0, 2)
		s := &c.Surges
		s.PerDay = u(2, 8)
		if r.IntN(2) == 0 {
			s.PumpTimes = []string{"05:30", "22:00"}
		}
		s.AmplitudeLH = u(50, 400)
		s.PeriodS = math.Exp(u(math.Log(0.5), math.Log(60)))
		s.Duration = water.Duration(time.Duration(u(5, 30)) * time.Minute)
		if r.Float64() < 0.25 {
			rate := max(u(5, 60), 3*max(m.CutoffLH, 4))
			c.Leaks = []water.Flow{{After: water.Duration(time.Duration(u(0.1, 0.6) * float64(days))), RateLH: rate}}
		}
		if r.Float64() < 0.2 {
			c.Backflows = []water.Flow{{After: water.Duration(time.Duration(u(0.05, 0.9) * float64(days))),
				For: water.Duration(time.Duration(u(10, 40)) * time.Minute), RateLH: u(100, 600)}}
		}
		if r.Float64() < 0.05 {
			c.Bursts = []water.Flow{{After: water.Duration(time.Duration(u(0.1, 0.9) * float64(days))),
				For: water.Duration(20 * time.Minute), RateLH: 1500}}
		}
		if r.Float64() < 0.05 {
			c.EmptyPipe = []water.Window{{After: water.Duration(time.Duration(u(0.1, 0.9) * float64(days))), For: water.Duration(time.Hour)}}
		}
		iv := o.Interval
		if iv == 0 {
			iv = MixedIntervals[r.IntN(len(MixedIntervals))]
		}
		specs[i] = MeterSpec{ID: fmt.Sprintf("m%03d", i+1), Interval: iv,
			Offset: time.Duration(r.Int64N(int64(iv))).Truncate(time.Second), Water: c}
	}
	if o.SmallBackflows {
		addSmallBackflows(specs, o)
	}
	return specs
}

// addSmallBackflows gives about a third of the meters one to three short
// backflows, half of them alone (any time of day) and half under surges
// (minutes after a pump switching time, or in the night hours where most
// random surges fall).
func addSmallBackflows(specs []MeterSpec, o Options) {
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0xBAC4F10))
	u := func(a, b float64) float64 { return a + r.Float64()*(b-a) }
	days := max(o.Days, 1)
	for i := range specs {
		if r.Float64() >= 0.35 {
			continue
		}
		c := &specs[i].Water
		for n := 1 + r.IntN(3); n > 0; n-- {
			day := time.Duration(r.IntN(days)) * 24 * time.Hour
			var at time.Duration
			switch {
			case r.IntN(2) == 0: // alone
				at = time.Duration(u(0, 24) * float64(time.Hour))
			case len(c.Surges.PumpTimes) > 0:
				pt := c.Surges.PumpTimes[r.IntN(len(c.Surges.PumpTimes))]
				hh, mm := int(pt[0]-'0')*10+int(pt[1]-'0'), int(pt[3]-'0')*10+int(pt[4]-'0')
				at = time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(u(0, 8)*float64(time.Minute))
			default: // in the night, where most surges fall
				at = time.Duration(u(0, 5) * float64(time.Hour))
			}
			c.Backflows = append(c.Backflows, water.Flow{After: water.Duration(day + at),
				For: water.Duration(time.Duration(u(1, 10) * float64(time.Minute)).Truncate(time.Second)), RateLH: u(20, 200)})
		}
	}
}
