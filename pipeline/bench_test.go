package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// fleet polled at a steady rate. perCommit is how many polls arrive within
// one commit latency: 250 meters a minute at the default 1 s latency is
// ~4; 7 meters every 1-2 s is ~5. old_per_reading is the pipeline before
// this package: one commit per reading with its meter's full state;
// full_states is batching without the filter journal.
func BenchmarkFlashPerReading(b *testing.B) {
	for _, c := range []struct {
		name      string
		meters    int
		perCommit int
		gap       time.Duration
		full      bool
	}{
		{"250meters_1min/latency1s", 250, 4, time.Minute, false},
		{"250meters_1min/old_per_reading", 250, 1, time.Minute, true},
		{"7meters_1.5s/latency1s", 7, 5, 1500 * time.Millisecond, false},
		{"7meters_1.5s/latency2s", 7, 9, 1500 * time.Millisecond, false},
		{"7meters_1.5s/latency1s_full_states", 7, 5, 1500 * time.Millisecond, true},
		{"7meters_1.5s/old_per_reading", 7, 1, 1500 * time.Millisecond, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "buf.db")
			buf, err := buffer.Open(path, buffer.Options{Logger: quietLog()})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			p := New(buf, Options{Filter: filter.New(filter.Config{}), Latency: time.Hour, cutEvery: c.perCommit, fullStates: c.full, Log: quietLog()})
			i := 0
			feed := func(n int) {
				for k := 0; k < n; k++ {
					m := fmt.Sprint("meter-", i%c.meters)
					r := poll(m, 0)
					r.Received = r.Received.Add(time.Duration(i/c.meters) * c.gap)
					r.Forward += 0.0001 * float64(i/c.meters)
					r.Flow = 0.01
					r.Has |= reading.HasFlow
					p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
					i++
				}
			}
			// Warm: every meter's state in the file and intervals released
			// (the filter holds back 15 minutes).
			feed(int(20*time.Minute/c.gap) * c.meters)
			waitStored(b, p)
			s0, c0, w0, d0 := p.Stats().Stored, p.Stats().Commits, wchar(b), writeBytes(b)
			b.ResetTimer()
			feed(b.N)
			waitStored(b, p)
			b.StopTimer()
			w1, d1, st := wchar(b), writeBytes(b), p.Stats()
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
			p.Close(context.Background())
		})
	}
}

// waitStored waits until the owner has committed every poll handed over
// (the filter holds some back; those are in its state, also committed).
func waitStored(b *testing.B, p *Pipeline) {
	for len(p.in) > 0 {
		time.Sleep(time.Millisecond)
	}
	// The owner cuts a batch every perCommit polls; commit the last,
	// partial one as the latency would.
	done := make(chan struct{})
	p.ctl <- func(o *owner) { o.flush(); close(done) }
	<-done
	for deadline := time.Now().Add(time.Minute); ; {
		st := p.Stats()
		if st.Pending == 0 && len(p.in) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not drained: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}
