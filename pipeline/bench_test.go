package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tidegate/buffer"
	"tidegate/filter"
	"tidegate/reading"
)

// wchar is what this process has written through syscalls (/proc/self/io):
// bbolt's page writes, the only writer while a benchmark runs.
func wchar(b *testing.B) int64 { return procIO(b, "wchar") }

// writeBytes is what this process caused the block layer to write
// (/proc/self/io write_bytes: page-cache pages it dirtied, 4 KiB each),
// what the flash sees. Zero where the kernel does not account it.
func writeBytes(b *testing.B) int64 { return procIO(b, "write_bytes") }

func procIO(b *testing.B, field string) int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io: cannot count bytes written")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ": "); ok && k == field {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Skip("no " + field + " in /proc/self/io")
	return 0
}

// BenchmarkFlashPerReading: bytes written to the buffer file per reading,
// beside the records' own encoded size (the reference, same run), for a
// fleet polled at a steady rate while the broker is down (every record
// stays), at two depths of backlog: a few thousand records held, and a
// broker outage of hours (>= 40k held, a records tree one level deeper).
//
// How it maps to the daemon: the polls come as drivers/bus.go makes them.
// Each meter's first poll lands at its bus's hashed jitter in the first
// quarter of its interval (the same hash), then every interval; one bus
// asks one meter at a time, an answer taking wire (50 ms, a 9600-baud
// Modbus poll). The batching is the owner's own: run arms its commit timer
// at the first poll of a batch and commits Latency later; here that timer
// runs on a virtual clock (vclock), fired exactly when the next poll would
// come after its deadline, so a batch is that poll and whatever arrives
// within the latency, as in the daemon, without waiting for the wall clock.
// "spread" places the meters' phases evenly over the whole interval
// instead (several buses started apart, a reload, slow buses): the worst
// case for batching, one poll every interval/meters.
//
// old_per_reading is the pipeline before this package: one commit per
// reading with its meter's full state; full_states is batching without the
// filter journal.
func BenchmarkFlashPerReading(b *testing.B) {
	const min20 = 20 * time.Minute
	for _, c := range []struct {
		name    string
		meters  int
		every   time.Duration
		spread  bool
		latency time.Duration
		held    int // records held before the measured polls
		full    bool
	}{
		{"250meters_1min/latency1s", 250, time.Minute, false, time.Second, 4000, false},
		{"250meters_1min/latency1s/held40k", 250, time.Minute, false, time.Second, 40000, false},
		{"250meters_1min/old_per_reading", 250, time.Minute, false, time.Nanosecond, 4000, true},
		{"7meters_1.5s/latency1s", 7, 1500 * time.Millisecond, false, time.Second, 4000, false},
		{"7meters_1.5s/latency1s/held40k", 7, 1500 * time.Millisecond, false, time.Second, 40000, false},
		{"7meters_1.5s/latency1s/spread", 7, 1500 * time.Millisecond, true, time.Second, 4000, false},
		{"7meters_1.5s/latency1s/spread/held40k", 7, 1500 * time.Millisecond, true, time.Second, 40000, false},
		{"7meters_1.5s/latency2s/spread", 7, 1500 * time.Millisecond, true, 2 * time.Second, 4000, false},
		{"7meters_1.5s/latency1s_full_states", 7, 1500 * time.Millisecond, false, time.Second, 4000, true},
		{"7meters_1.5s/old_per_reading", 7, 1500 * time.Millisecond, false, time.Nanosecond, 4000, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "buf.db")
			buf, err := buffer.Open(path, buffer.Options{Logger: quietLog()})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			clk := &vclock{c: make(chan time.Time)}
			p := New(buf, Options{Filter: filter.New(filter.Config{}), Latency: c.latency, after: clk.after,
				fullStates: c.full, Log: quietLog()})
			sched := newSchedule(c.meters, c.every, c.spread)
			feed := func(n int) {
				for k := 0; k < n; k++ {
					m, at, round := sched.next()
					clk.advance(p, at)
					r := poll(fmt.Sprint("meter-", m), 0)
					r.Received = at
					r.Forward += 0.0001 * float64(round)
					r.Flow = 0.01
					r.Has |= reading.HasFlow
					p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
					clk.settle(p)
				}
			}
			// Warm: every meter's state in the file, intervals released
			// (the filter holds back 15 minutes), the backlog held.
			feed(int(min20/c.every) * c.meters)
			for buf.Stats().Depth < uint64(c.held) {
				feed(c.meters)
			}
			clk.drain(p)
			pg0, err := buf.Pages()
			if err != nil {
				b.Fatal(err)
			}
			s0, c0, w0, d0 := p.Stats().Stored, p.Stats().Commits, wchar(b), writeBytes(b)
			b.ResetTimer()
			feed(b.N)
			clk.drain(p)
			b.StopTimer()
			w1, d1, st := wchar(b), writeBytes(b), p.Stats()
			pg1, err := buf.Pages()
			if err != nil {
				b.Fatal(err)
			}
			stored := st.Stored - s0
			bs := buf.Stats()
			enc := float64(bs.LiveBytes) / float64(bs.Depth)
			perReading := float64(w1-w0) / float64(b.N)
			b.ReportMetric(perReading, "B_written/reading")
			b.ReportMetric(float64(d1-d0)/float64(b.N), "B_device/reading")
			b.ReportMetric(enc, "B_encoded/record")
			b.ReportMetric(perReading/enc, "written/encoded")
			b.ReportMetric(float64(stored)/float64(b.N), "records/reading")
			b.ReportMetric(float64(b.N)/float64(st.Commits-c0), "readings/commit")
			b.ReportMetric(float64(pg1.Writes-pg0.Writes)/float64(pg1.Commits-pg0.Commits), "pages/commit")
			b.ReportMetric(float64(bs.Depth), "held")
			b.ReportMetric(float64(pg1.Depth), "levels")
			b.ReportMetric(float64(pg1.BacklogDepth), "backlog_levels")
			b.ReportMetric(float64(pg1.LeafInuse)/float64(pg1.LeafPages*pg1.PageSize), "leaf_fill")
			p.Close(context.Background())
		})
	}
}

// schedule yields polls in the order a bus makes them (see
// BenchmarkFlashPerReading).
type schedule struct {
	every   time.Duration
	order   []int           // meters by phase
	phase   []time.Duration // per meter, in order
	wire    time.Duration
	start   time.Time
	round   int
	i       int
	busFree time.Time
}

func newSchedule(meters int, every time.Duration, spread bool) *schedule {
	s := &schedule{every: every, start: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}
	ph := make([]time.Duration, meters)
	for m := range ph {
		if spread {
			ph[m] = every * time.Duration(m) / time.Duration(meters)
			continue
		}
		// drivers/bus.go newBus: the first poll's jitter.
		h := fnv.New64a()
		h.Write([]byte("bus0/" + fmt.Sprint("meter-", m)))
		ph[m] = time.Duration(rand.New(rand.NewPCG(h.Sum64(), 1)).Int64N(int64(every)/4 + 1))
		s.wire = 50 * time.Millisecond
	}
	for m := range ph {
		s.order = append(s.order, m)
	}
	sort.SliceStable(s.order, func(a, b int) bool { return ph[s.order[a]] < ph[s.order[b]] })
	for _, m := range s.order {
		s.phase = append(s.phase, ph[m])
	}
	return s
}

// next is the next poll: its meter, when its answer was complete, and the
// meter's poll count.
func (s *schedule) next() (meter int, at time.Time, round int) {
	due := s.start.Add(time.Duration(s.round)*s.every + s.phase[s.i])
	at = due
	if s.busFree.After(at) {
		at = s.busFree
	}
	at = at.Add(s.wire)
	s.busFree = at
	meter, round = s.order[s.i], s.round
	if s.i++; s.i == len(s.order) {
		s.i, s.round = 0, s.round+1
	}
	return meter, at, round
}

// vclock is the owner's commit timer (Options.after) on a virtual clock.
// The feeder moves it to each poll's time before handing the poll over;
// a timer due by then fires first, and the owner has taken each poll (and
// armed its timer for it) before the clock moves on: the same batches as
// the wall clock would cut, deterministically.
type vclock struct {
	mu    sync.Mutex
	c     chan time.Time // unbuffered: a fire is taken before anything else is sent
	armed bool
	at    time.Time
	now   time.Time
}

func (v *vclock) after(d time.Duration) (<-chan time.Time, func() bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.armed, v.at = true, v.now.Add(d)
	return v.c, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		was := v.armed
		v.armed = false
		return was
	}
}

// advance moves the clock to t, firing the timer first if it is due by then.
func (v *vclock) advance(p *Pipeline, t time.Time) {
	v.mu.Lock()
	due, at := v.armed && !v.at.After(t), v.at
	if due {
		v.armed, v.now = false, at
	}
	v.mu.Unlock()
	if due {
		v.c <- at
		v.settle(p) // the commit done, a failed one re-armed at its deadline
	}
	v.mu.Lock()
	v.now = t
	v.mu.Unlock()
}

// settle returns once the owner has taken everything handed over.
func (v *vclock) settle(p *Pipeline) {
	for len(p.in) > 0 {
		runtime.Gosched()
	}
	p.ctl <- func(*owner) {} // runs after the owner's last take or flush
}

// drain fires the timer of the batch still open, as the latency would.
func (v *vclock) drain(p *Pipeline) {
	v.settle(p)
	v.mu.Lock()
	due := v.armed
	v.armed = false
	v.mu.Unlock()
	if due {
		v.c <- v.at
		v.settle(p)
	}
	if st := p.Stats(); st.Pending != 0 {
		panic(fmt.Sprintf("not drained: %+v", st))
	}
}
