package water

import (
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Errors returned by New for a configuration that cannot be simulated.
var (
	ErrProfile = errors.New("water: unknown use profile")
	ErrConfig  = errors.New("water: bad configuration")
)

// Profiles of end use. Vacant is the self-rotation complaint case: no use at all.
const (
	ProfileFlat    = "flat"
	ProfileVacant  = "vacant"
	ProfileShop    = "shop"
	ProfileFactory = "factory"
)

// Duration is a time.Duration written as "36h" or "90s" in YAML.
type Duration time.Duration

// UnmarshalYAML accepts Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Config is one meter's water and metrology. The simulator's meter config
// embeds it under `water:`. The zero value is a two-person flat on a DN15
// meter with the defaults below.
type Config struct {
	Profile  string  `yaml:"profile"`   // flat (default), vacant, shop, factory
	Persons  int     `yaml:"persons"`   // flat: occupants (default 2); shop/factory: staff
	UseScale float64 `yaml:"use_scale"` // multiplies event counts (default 1)

	Meter  Metrology   `yaml:"meter"`
	Surges SurgeConfig `yaml:"surges"`

	Leaks     []Flow   `yaml:"leaks"`      // steady positive flow, rate_lh
	Bursts    []Flow   `yaml:"bursts"`     // large sudden flow, rate_lh
	Backflows []Flow   `yaml:"backflows"`  // real reverse flow with no return, rate_lh
	EmptyPipe []Window `yaml:"empty_pipe"` // pipe drained: nothing flows, meter flags it
}

// Metrology is how the meter turns true flow into registered totals.
type Metrology struct {
	CutoffLH        float64 `yaml:"cutoff_lh"`         // forward low-flow cut-off, L/h (default 3)
	ReverseCutoffLH float64 `yaml:"reverse_cutoff_lh"` // reverse cut-off, L/h (default = cutoff_lh)
	ForwardGain     float64 `yaml:"forward_gain"`      // registered/true forward (default 1)
	ReverseGain     float64 `yaml:"reverse_gain"`      // registered/true reverse (default 0.9)
	ResolutionL     float64 `yaml:"resolution_l"`      // totaliser step, litres (default 1)
	SampleS         float64 `yaml:"sample_s"`          // flow sampling period while flowing, s (default 0.7)
	ClockDriftPPM   float64 `yaml:"clock_drift_ppm"`   // meter clock runs fast by this (default 0)
	BatteryMV       float64 `yaml:"battery_mv"`        // at start (default 3600)
	BatteryDropMV   float64 `yaml:"battery_drop_mv_per_day"`
	LowBatteryMV    float64 `yaml:"low_battery_mv"` // default 3100
}

// SurgeConfig describes pressure-surge episodes that make the water column
// oscillate behind the meter (self-rotation).
type SurgeConfig struct {
	PerDay      float64  `yaml:"per_day"`      // random episodes a day (default 0: none)
	NightShare  float64  `yaml:"night_share"`  // share of random episodes 00–05 h local (default 0.7)
	PumpTimes   []string `yaml:"pump_times"`   // "HH:MM" local: an episode every day at pump switching
	AmplitudeLH float64  `yaml:"amplitude_lh"` // peak oscillating flow, L/h (default 150)
	PeriodS     float64  `yaml:"period_s"`     // oscillation period, s (default 20)
	Duration    Duration `yaml:"duration"`     // mean episode length (default 15m)
}

// Flow is a scheduled flow: from After (since the simulation start) for For
// (0 = until the end) at RateLH litres an hour.
type Flow struct {
	After  Duration `yaml:"after"`
	For    Duration `yaml:"for"`
	RateLH float64  `yaml:"rate_lh"`
}

// Window is a scheduled span since the simulation start.
type Window struct {
	After Duration `yaml:"after"`
	For   Duration `yaml:"for"`
}

func (c Config) withDefaults() Config {
	if c.Profile == "" {
		c.Profile = ProfileFlat
	}
	if c.Persons == 0 {
		c.Persons = 2
	}
	if c.UseScale == 0 {
		c.UseScale = 1
	}
	m := &c.Meter
	if m.CutoffLH == 0 {
		m.CutoffLH = 3
	}
	if m.ReverseCutoffLH == 0 {
		m.ReverseCutoffLH = m.CutoffLH
	}
	if m.ForwardGain == 0 {
		m.ForwardGain = 1
	}
	if m.ReverseGain == 0 {
		m.ReverseGain = 0.9
	}
	if m.SampleS == 0 {
		m.SampleS = 0.7
	}
	if m.ResolutionL == 0 {
		m.ResolutionL = 1
	}
	if m.BatteryMV == 0 {
		m.BatteryMV = 3600
	}
	if m.LowBatteryMV == 0 {
		m.LowBatteryMV = 3100
	}
	s := &c.Surges
	if s.NightShare == 0 {
		s.NightShare = 0.7
	}
	if s.AmplitudeLH == 0 {
		s.AmplitudeLH = 150
	}
	if s.PeriodS == 0 {
		s.PeriodS = 20
	}
	if s.Duration == 0 {
		s.Duration = Duration(15 * time.Minute)
	}
	return c
}

func (c Config) validate() error {
	switch c.Profile {
	case ProfileFlat, ProfileVacant, ProfileShop, ProfileFactory:
	default:
		return fmt.Errorf("%w %q (flat, vacant, shop, factory)", ErrProfile, c.Profile)
	}
	m := c.Meter
	switch {
	case c.Persons < 0 || c.UseScale < 0:
		return fmt.Errorf("%w: persons and use_scale must not be negative", ErrConfig)
	case m.CutoffLH < 0 || m.ReverseCutoffLH < 0:
		return fmt.Errorf("%w: cut-off must not be negative", ErrConfig)
	case m.ForwardGain <= 0 || m.ForwardGain > 2 || m.ReverseGain <= 0 || m.ReverseGain > 2:
		return fmt.Errorf("%w: gains must be in (0, 2]", ErrConfig)
	case m.SampleS < 0.05 || m.SampleS > 60:
		return fmt.Errorf("%w: sample_s must be in [0.05, 60]", ErrConfig)
	case m.ResolutionL < 0:
		return fmt.Errorf("%w: resolution_l must not be negative", ErrConfig)
	case c.Surges.PerDay < 0 || c.Surges.PerDay > 1000 || c.Surges.NightShare < 0 || c.Surges.NightShare > 1:
		return fmt.Errorf("%w: surges per_day must be in [0, 1000], night_share in [0, 1]", ErrConfig)
	case c.Surges.PeriodS < 0.5 || c.Surges.PeriodS > 600:
		return fmt.Errorf("%w: surges period_s must be in [0.5, 600]", ErrConfig)
	case c.Surges.AmplitudeLH < 0 || c.Surges.Duration < 0:
		return fmt.Errorf("%w: surges amplitude and duration must not be negative", ErrConfig)
	}
	for _, p := range c.Surges.PumpTimes {
		if _, err := parseClock(p); err != nil {
			return fmt.Errorf("%w: pump_times %q: %v", ErrConfig, p, err)
		}
	}
	for _, set := range [][]Flow{c.Leaks, c.Bursts, c.Backflows} {
		for _, f := range set {
			if f.After < 0 || f.For < 0 || f.RateLH < 0 {
				return fmt.Errorf("%w: scheduled flows need after, for and rate_lh ≥ 0", ErrConfig)
			}
		}
	}
	for _, w := range c.EmptyPipe {
		if w.After < 0 || w.For <= 0 {
			return fmt.Errorf("%w: empty_pipe needs after ≥ 0 and for > 0", ErrConfig)
		}
	}
	return nil
}

// parseClock reads "HH:MM" as an offset into the local day.
func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}
