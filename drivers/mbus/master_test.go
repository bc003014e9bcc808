package mbus

import (
	"context"
	"errors"
	"testing"
	"time"
)

// volumeRecord is DIF 04 VIF 13 (volume, litres), 4 bytes.
var volumeRecord = []byte{0x04, 0x13, 0x39, 0x30, 0x00, 0x00}

func TestReadPrimary(t *testing.T) {
	meter := &fakeMeter{primary: 5, sec: Secondary{ID: 12345678, Manufacturer: 0x2C2D, Version: 1, Medium: 7}, lastFCB: -1,
		telegrams: [][]byte{volumeRecord}}
	bus := newFakeBus(t, 2400, meter)
	m := bus.open(t, Options{})
	ctx := context.Background()
	if err := m.Init(ctx, 5); err != nil {
		t.Fatalf("Init: %v", err)
	}
	for i := range 3 {
		ts, err := m.ReadPrimary(ctx, 5)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if len(ts) != 1 || ts[0].Address != 5 || ts[0].CI != 0x72 {
			t.Fatalf("read %d: %d telegrams %+v", i, len(ts), ts)
		}
		sec, ok := headerSecondary(ts[0].CI, ts[0].Data)
		if !ok || sec != meter.sec {
			t.Fatalf("header %v %v, want %v", sec, ok, meter.sec)
		}
	}
	// FCB starts set after SND_NKE and toggles with every answered request.
	want := []bool{true, false, true}
	bus.mu.Lock()
	defer bus.mu.Unlock()
	for i, f := range meter.fcbs {
		if f != want[i] {
			t.Fatalf("FCB sequence %v, want %v", meter.fcbs, want)
		}
	}
}

func TestMultiTelegram(t *testing.T) {
	more := append(append([]byte(nil), volumeRecord...), 0x1F)
	for _, tc := range []struct {
		name string
		max  int
		want int
	}{{"all", 0, 3}, {"capped", 2, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			meter := &fakeMeter{primary: 9, sec: Secondary{ID: 1}, lastFCB: -1, telegrams: [][]byte{more, more, volumeRecord}}
			m := newFakeBus(t, 9600, meter).open(t, Options{MaxTelegrams: tc.max})
			if err := m.Init(context.Background(), 9); err != nil {
				t.Fatal(err)
			}
			ts, err := m.ReadPrimary(context.Background(), 9)
			if err != nil || len(ts) != tc.want {
				t.Fatalf("%d telegrams, err %v; want %d", len(ts), err, tc.want)
			}
			for i, tg := range ts {
				if tg.Data[8] != byte(i) {
					t.Fatalf("telegram %d is the meter's number %d: FCB did not advance", i, tg.Data[8])
				}
			}
		})
	}
}

func TestReadSecondary(t *testing.T) {
	a := &fakeMeter{primary: 0, sec: Secondary{ID: 11112222, Manufacturer: 0x1111, Version: 2, Medium: 7}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
	b := &fakeMeter{primary: 0, sec: Secondary{ID: 11112222, Manufacturer: 0x2222, Version: 2, Medium: 7}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
	m := newFakeBus(t, 9600, a, b).open(t, Options{})
	ctx := context.Background()
	for _, want := range []Secondary{a.sec, b.sec} {
		ts, err := m.ReadSecondary(ctx, want)
		if err != nil {
			t.Fatalf("%v: %v", want, err)
		}
		got, _ := headerSecondary(ts[0].CI, ts[0].Data)
		if got != want {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// Both share the id: a selection by id alone collides.
	if _, err := m.ReadSecondary(ctx, Secondary{ID: 11112222, Manufacturer: 0xFFFF, Version: 0xFF, Medium: 0xFF}); !errors.Is(err, ErrCollision) {
		t.Fatalf("id-only selection of two meters: %v, want ErrCollision", err)
	}
	if _, err := m.ReadSecondary(ctx, Secondary{ID: 99999999}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("absent meter: %v, want ErrTimeout", err)
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(*fakeBus, *fakeMeter)
		opt    Options
		want   error
		counts func(*Counters) int64
	}{
		{"silent", func(b *fakeBus, m *fakeMeter) { m.silent = true }, Options{}, ErrTimeout, func(c *Counters) int64 { return c.Timeouts.Load() }},
		{"checksum", func(b *fakeBus, m *fakeMeter) { m.badSum = true }, Options{}, ErrChecksum, func(c *Counters) int64 { return c.Checksum.Load() }},
		{"wrong address", func(b *fakeBus, m *fakeMeter) { m.wrongAddr = true }, Options{}, ErrWrongAddress, func(c *Counters) int64 { return c.WrongAddress.Load() }},
		{"noise before answer", func(b *fakeBus, m *fakeMeter) { b.noise = []byte{0x00, 0xFF, 0x68} }, Options{}, nil, func(c *Counters) int64 { return c.Stray.Load() }},
		{"echo expected", func(b *fakeBus, m *fakeMeter) { b.echo = true }, Options{Echo: true}, nil, func(c *Counters) int64 { return c.Echoes.Load() }},
		{"echo unannounced", func(b *fakeBus, m *fakeMeter) { b.echo = true }, Options{}, nil, func(c *Counters) int64 { return c.Echoes.Load() }},
		{"echo missing", func(b *fakeBus, m *fakeMeter) {}, Options{Echo: true, Timeout: 50 * time.Millisecond}, ErrEcho, func(c *Counters) int64 { return c.Collisions.Load() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meter := &fakeMeter{primary: 3, sec: Secondary{ID: 3}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
			bus := newFakeBus(t, 9600, meter)
			bus.mu.Lock()
			tc.setup(bus, meter)
			bus.mu.Unlock()
			m := bus.open(t, tc.opt)
			start := time.Now()
			ts, err := m.ReadPrimary(context.Background(), 3)
			if tc.want == nil && (err != nil || len(ts) != 1) {
				t.Fatalf("err %v, %d telegrams; want one", err, len(ts))
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if n := tc.counts(m.Counters()); n == 0 {
				t.Fatalf("fault not counted: %+v", m.Counters())
			}
			// Whatever happened, the bus is free again within the timeout plus slack.
			if d := time.Since(start); d > m.Options().Timeout+time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func TestTimeoutFromBaud(t *testing.T) {
	for _, tc := range []struct {
		baud int
		want time.Duration
	}{{300, 1186666666}, {2400, 192083333}, {9600, 85520833}} {
		l := newFakeBus(t, tc.baud).open(t, Options{})
		if got := l.Options().Timeout; got != tc.want {
			t.Errorf("baud %d: timeout %v, want %v", tc.baud, got, tc.want)
		}
	}
}
