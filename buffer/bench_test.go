package buffer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tidegate/reading"
)

// fsyncRate measures the disk under dir: 4 KiB write + fsync, as fast as it
// goes for a moment. Every figure below is also reported against it, so the
// numbers mean something on another machine's disk.
func fsyncRate(b *testing.B, dir string) float64 {
	b.Helper()
	f, err := os.CreateTemp(dir, "fsync")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
		if _, err := f.WriteAt(page, int64(n%16)*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

// procIO returns write_bytes (sent towards the device) and wchar (written
// by syscalls) of this process from /proc/self/io; zeros where unavailable.
func procIO() (writeBytes, wchar int64) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "write_bytes":
			writeBytes = n
		case "wchar":
			wchar = n
		}
	}
	return writeBytes, wchar
}

func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func benchBuffer(b *testing.B) (*Buffer, string) {
	b.Helper()
	dir := b.TempDir()
	buf := openTest(b, filepath.Join(dir, "buffer.db"), Options{MaxRecords: 1 << 40, MaxBytes: 1 << 40, MaxSize: -1, hotSpan: DefaultHotSpan})
	b.Cleanup(func() { buf.Close() })
	return buf, dir
}

// BenchmarkAppend: durable appends (Append returns after the fsync) from
// concurrent producers, each appending perCall records a call: 1 is a
// driver handing over each reading as it comes, 16 a bus poll cycle.
func BenchmarkAppend(b *testing.B) {
	for _, perCall := range []int{1, 16} {
		for _, producers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("producers=%d/per_call=%d", producers, perCall), func(b *testing.B) {
				buf, dir := benchBuffer(b)
				ref := fsyncRate(b, dir)
				recs := make([]reading.Record, perCall)
				for i := range recs {
					recs[i] = readingRec(fmt.Sprintf("m-%04d", i), i)
				}
				var left atomic.Int64
				left.Store(int64(b.N))
				c0 := buf.commits.Load()
				w0, _ := procIO()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for p := 0; p < producers; p++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for left.Add(-int64(perCall)) > -int64(perCall) {
							if _, err := buf.Append(context.Background(), recs...); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				el := time.Since(start).Seconds()
				b.StopTimer()
				w1, _ := procIO()
				n := float64(buf.Stats().Appended)
				commits := float64(buf.commits.Load() - c0)
				b.ReportMetric(n/el, "appends/s")
				b.ReportMetric(ref, "disk_fsyncs/s")
				b.ReportMetric(n/el/ref, "appends_per_disk_fsync")
				b.ReportMetric(n/commits, "records/commit")
				b.ReportMetric(float64(w1-w0)/n, "disk_B/reading")
			})
		}
	}
}

// BenchmarkDrain: the uplink catching up on a backlog, Read 1000 then
// AckUpTo, each ack a durable commit.
func BenchmarkDrain(b *testing.B) {
	buf, dir := benchBuffer(b)
	ref := fsyncRate(b, dir)
	recs := make([]reading.Record, 1000)
	for i := range recs {
		recs[i] = readingRec(fmt.Sprintf("m-%04d", i%250), i)
	}
	for n := 0; n < b.N; n += len(recs) {
		if _, err := buf.Append(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
	}
	held := buf.Stats().Depth
	b.ResetTimer()
	start := time.Now()
	var after uint64
	for {
		got, err := buf.Read(after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		after = got[len(got)-1].Seq
		if err := buf.AckUpTo(after); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	if d := buf.Stats().Depth; d != 0 {
		b.Fatalf("%d left after draining", d)
	}
	b.ReportMetric(float64(held)/el, "drained/s")
	b.ReportMetric(ref, "disk_fsyncs/s")
	b.ReportMetric(float64(held)/el/ref, "drained_per_disk_fsync")
}

// BenchmarkPollCycle is the steady state of a gateway with the broker up:
// 250 readings appended in one call, then read and acknowledged. The bytes
// it writes per reading are the flash wear of normal operation.
func BenchmarkPollCycle(b *testing.B) {
	buf, dir := benchBuffer(b)
	ref := fsyncRate(b, dir)
	recs := make([]reading.Record, 250)
	for i := range recs {
		recs[i] = readingRec(fmt.Sprintf("m-%04d", i), i)
	}
	w0, c0 := procIO()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		seqs, err := buf.Append(context.Background(), recs...)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := buf.Read(seqs[0]-1, 250); err != nil {
			b.Fatal(err)
		}
		if err := buf.AckUpTo(seqs[len(seqs)-1]); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	w1, c1 := procIO()
	n := float64(b.N * len(recs))
	b.ReportMetric(float64(w1-w0)/n, "disk_B/reading")
	b.ReportMetric(float64(c1-c0)/n, "written_B/reading")
	b.ReportMetric(n/el, "readings/s")
	b.ReportMetric(n/el/ref, "readings_per_disk_fsync")
}

// BenchmarkHold1M fills a buffer with a million interval readings (250
// meters, a poll cycle per Append) and reports the file size, the bytes
// written on the way, and the process's memory while it holds them. It
// runs once whatever b.N says: it is a measurement, not a loop.
func BenchmarkHold1M(b *testing.B) {
	if os.Getenv("TIDEGATE_BENCH_SMALL") == "1" {
		b.Skip("TIDEGATE_BENCH_SMALL=1")
	}
	const total, meters = 1_000_000, 250
	buf, dir := benchBuffer(b)
	ref := fsyncRate(b, dir)
	runtime.GC()
	rss0 := rssBytes()
	w0, c0 := procIO()
	start := time.Now()
	recs := make([]reading.Record, meters)
	for n := 0; n < total; n += meters {
		for i := range recs {
			recs[i] = readingRec(fmt.Sprintf("m-%04d", i), n/meters)
		}
		if _, err := buf.Append(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start).Seconds()
	w1, c1 := procIO()
	runtime.GC()
	s := buf.Stats()
	if s.Depth != total {
		b.Fatalf("holding %d", s.Depth)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(s.FileBytes), "file_B/1M_readings")
	b.ReportMetric(float64(s.LiveBytes)/total, "record_B/reading")
	b.ReportMetric(float64(w1-w0)/total, "disk_B/reading")
	b.ReportMetric(float64(c1-c0)/total, "written_B/reading")
	b.ReportMetric(float64(rssBytes())/(1<<20), "rss_MiB")
	b.ReportMetric(float64(rssBytes()-rss0)/(1<<20), "rss_growth_MiB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "go_heap_MiB")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "go_sys_MiB")
	b.ReportMetric(total/el, "fill_readings/s")
	b.ReportMetric(total/el/ref, "fill_per_disk_fsync")
	buf.Close()
	start = time.Now()
	buf2 := openTest(b, filepath.Join(dir, "buffer.db"), Options{MaxRecords: 1 << 40, MaxBytes: 1 << 40, MaxSize: -1, hotSpan: DefaultHotSpan})
	b.ReportMetric(time.Since(start).Seconds(), "reopen_s")
	buf2.Close()
}
