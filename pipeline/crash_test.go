package pipeline

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"tidegate/filter"
	"tidegate/reading"
)

const crashChildEnv = "TIDEGATE_PIPELINE_CRASH_CHILD"

var crashMeters = []string{"c1", "c2", "c3"}

// TestMain lets the test binary be the process the crash test kills.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild feeds the pipeline until it is killed. Each run starts its
// series well past anything an earlier run could have pushed into the
// filter (the filter holds back at most its window, 15 polls here).
func crashChild(path string) {
	buf := openBuf(nilTB{}, path)
	start := 0
	for _, r := range readAll(nilTB{}, buf) {
		if r.Reading != nil {
			start = max(start, pollIndex(r.Reading.Received)+1000)
		}
	}
	ckpt, _ := strconv.Atoi(os.Getenv(crashCkptEnv))
	p := New(buf, Options{Filter: filter.New(filter.Config{}), Meters: crashMeters, Latency: 5 * time.Millisecond, CheckpointEvery: ckpt, Log: quietLog()})
	fmt.Println("ready")
	for i := start; ; i++ {
		for _, m := range crashMeters {
			r := poll(m, i)
			p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

func pollIndex(t time.Time) int {
	return int(t.Sub(poll("", 0).Received) / time.Minute)
}

// The guarantee AppendWithState exists for, through the pipeline: SIGKILLed
// at any moment, the filter resumes exactly where its records end. Every
// interval a meter's records carry starts where the one before it ended:
// none emitted twice (an overlap), none lost (a gap), across four kills
// and the final flush.
func TestCrashFilterResumesWhereRecordsEnd(t *testing.T) { crashResumes(t, 0) }

// The same with a checkpoint every 30 polls: most kills land between a
// checkpoint that dropped the journal and the entries after it.
func TestCrashFilterResumesFrequentCheckpoints(t *testing.T) { crashResumes(t, 30) }

// crashChildEnv's child takes its CheckpointEvery from crashCkptEnv.
const crashCkptEnv = "TIDEGATE_PIPELINE_CRASH_CKPT"

func crashResumes(t *testing.T, ckpt int) {
	if testing.Short() {
		t.Skip("crash test: re-runs the test binary and kills it")
	}
	path := filepath.Join(t.TempDir(), "buf.db")
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for run := 0; run < 4; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashCkptEnv+"="+strconv.Itoa(ckpt))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make([]byte, 6)
		if _, err := out.Read(ready); err != nil || string(ready) != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q %v", ready, err)
		}
		time.Sleep(time.Duration(100+rng.Intn(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	buf := openBuf(t, path)
	defer buf.Close()
	recs := readAll(t, buf)
	p := New(buf, Options{Filter: filter.New(filter.Config{}), Meters: crashMeters, Log: quietLog()})
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, buf)
	if len(all) <= len(recs) {
		t.Fatalf("the final flush released nothing (%d records before, %d after): the states were not restored", len(recs), len(all))
	}
	for _, m := range crashMeters {
		var iv []reading.Reading
		for _, r := range all {
			if r.Reading != nil && r.Reading.Meter == m && r.Reading.Filter != nil {
				iv = append(iv, *r.Reading)
			}
		}
		if len(iv) < 100 {
			t.Fatalf("meter %s: only %d intervals stored", m, len(iv))
		}
		if !sort.SliceIsSorted(iv, func(i, j int) bool { return iv[i].Received.Before(iv[j].Received) }) {
			t.Fatalf("meter %s: intervals out of order", m)
		}
		for i := 1; i < len(iv); i++ {
			if !iv[i].Filter.Start.Equal(iv[i-1].Received) {
				t.Fatalf("meter %s: interval %d starts at poll %d, the one before ended at poll %d (%s)", m, i,
					pollIndex(iv[i].Filter.Start), pollIndex(iv[i-1].Received),
					map[bool]string{true: "emitted twice", false: "lost"}[iv[i].Filter.Start.Before(iv[i-1].Received)])
			}
		}
		t.Logf("meter %s: %d contiguous intervals", m, len(iv))
	}
}

// nilTB lets the child use the helpers: it has no test to fail, so it dies.
type nilTB struct{ testing.TB }

func (nilTB) Helper() {}
func (nilTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(3)
}
