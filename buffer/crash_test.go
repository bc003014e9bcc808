package buffer

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tidegate/reading"
)

// The crash test runs the test binary itself as the process to kill: with
// this variable set, TestCrashRecovery becomes the child, appending as fast
// as it can and telling the parent, over a pipe, every sequence number that
// Append has returned.
const crashChildEnv = "TIDEGATE_BUFFER_CRASH_CHILD"

// crash1970Env makes the child a box whose clock says 1970.
const crash1970Env = "TIDEGATE_BUFFER_CRASH_1970"

func TestCrashRecovery(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path, os.Getenv("TIDEGATE_BUFFER_CRASH_ROUND"))
		return
	}
	rounds := 20
	if os.Getenv("TIDEGATE_LONG") == "1" {
		rounds = 100
	}
	crashRounds(t, rounds)
}

// BenchmarkCrash100 is the full crash test for `make bench` (and nightly):
// 100 SIGKILLs. It runs once whatever b.N says.
func BenchmarkCrash100(b *testing.B) {
	n := crashRounds(b, 100)
	b.ReportMetric(100, "kills")
	b.ReportMetric(float64(n), "verified_appends")
}

func crashRounds(t testing.TB, rounds int) int {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d, %d rounds", seed, rounds)
	path := filepath.Join(t.TempDir(), "buffer.db")
	appended := map[uint64]string{} // every seq a child reported, with its record's meter
	var reportedAck uint64
	var totalAppended int
	for round := 0; round < rounds; round++ {
		lines, stderr := runAndKill(t, path, round, time.Duration(20+rng.IntN(250))*time.Millisecond)
		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "A":
				s, _ := strconv.ParseUint(f[1], 10, 64)
				appended[s] = f[2]
				n++
			case len(f) == 2 && f[0] == "K":
				s, _ := strconv.ParseUint(f[1], 10, 64)
				reportedAck = max(reportedAck, s)
			case len(f) >= 1 && f[0] == "E":
				t.Fatalf("round %d: child failed: %s\n%s", round, l, stderr)
			}
		}
		totalAppended += n
		verifyAfterCrash(t, path, round, appended, reportedAck)
		// Records the receiver has confirmed do not need checking again.
		for s := range appended {
			if s <= reportedAck {
				delete(appended, s)
			}
		}
	}
	t.Logf("%d rounds, %d appends acknowledged to the parent, all present after SIGKILL", rounds, totalAppended)
	return totalAppended
}

// runAndKill starts a child on path, lets it append for d after it has
// opened the buffer, SIGKILLs it and returns the complete lines it wrote.
func runAndKill(t testing.TB, path string, round int, d time.Duration, env ...string) ([]string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, "TIDEGATE_BUFFER_CRASH_ROUND="+strconv.Itoa(round))
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReaderSize(out, 1<<16)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return // a last line without its newline was cut by the kill: not reported
			}
			if l == "R\n" {
				close(ready)
				continue
			}
			lines = append(lines, l)
		}
	}()
	select {
	case <-ready:
	case <-done:
		cmd.Wait()
		t.Fatalf("round %d: child exited before opening the buffer: %s", round, stderr.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("round %d: child did not open the buffer: %s", round, stderr.String())
	}
	time.Sleep(d)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	cmd.Wait()
	return lines, stderr.String()
}

func verifyAfterCrash(t testing.TB, path string, round int, appended map[uint64]string, reportedAck uint64) {
	t.Helper()
	b := openTest(t, path, Options{})
	defer b.Close()
	s := b.Stats()
	if !s.Unclean || s.Recovered != nil {
		t.Fatalf("round %d: after SIGKILL unclean=%v recovered=%+v; want unclean, not recovered", round, s.Unclean, s.Recovered)
	}
	if s.Cursor < reportedAck {
		t.Fatalf("round %d: cursor %d, but the child was told AckUpTo(%d) had succeeded", round, s.Cursor, reportedAck)
	}
	// Everything held is one run of sequence numbers from the cursor to the
	// last assigned: no gap, no reordering.
	held := map[uint64]string{}
	lastCounter := map[string]int{}
	next := s.Cursor + 1
	for after := s.Cursor; ; {
		recs, err := b.Read(after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Seq != next {
				t.Fatalf("round %d: seq %d follows %d: gap", round, r.Seq, next-1)
			}
			next++
			m := r.Reading.Meter
			held[r.Seq] = m
			// Meter is round-goroutine-counter: each producer's records
			// must be in the order it appended them.
			i := strings.LastIndexByte(m, '-')
			c, _ := strconv.Atoi(m[i+1:])
			if prev, ok := lastCounter[m[:i]]; ok && c <= prev {
				t.Fatalf("round %d: %s at seq %d after counter %d: out of order", round, m, r.Seq, prev)
			}
			lastCounter[m[:i]] = c
		}
		after = recs[len(recs)-1].Seq
	}
	if next-1 != s.LastSeq {
		t.Fatalf("round %d: records end at %d, last seq is %d", round, next-1, s.LastSeq)
	}
	for prod, last := range lastCounter {
		st, err := b.State("producer/" + prod)
		if err != nil {
			t.Fatal(err)
		}
		if string(st) != strconv.Itoa(last) {
			t.Fatalf("round %d: %s's state says %q, its last record on disk is %d: state and records not in one transaction", round, prod, st, last)
		}
	}
	for seq, m := range appended {
		if seq <= s.Cursor {
			continue // acknowledged by the consumer and deleted
		}
		if held[seq] != m {
			t.Fatalf("round %d: Append returned seq %d for %s, the file has %q there", round, seq, m, held[seq])
		}
	}
}

// crashChild appends from several goroutines and consumes from one until
// it is killed. Each line is written only after the call it reports has
// returned.
func crashChild(path, round string) {
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		os.Stdout.WriteString(s)
		mu.Unlock()
	}
	opt := Options{Logger: quietLogger()}
	if os.Getenv(crash1970Env) != "" {
		// A box without a real-time clock; the floor file reserves few
		// seqs at a time, so a run crosses many of its writes.
		opt.Clock, opt.floorStep = func() time.Time { return time.UnixMicro(0) }, 500
	}
	b, err := Open(path, opt)
	if err != nil {
		say("E open " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n")
		os.Exit(3)
	}
	say("R\n")
	for g := 0; g < 6; g++ {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for counter := 0; ; {
				recs := make([]reading.Record, 1+rng.IntN(16))
				for i := range recs {
					recs[i] = readingRec(fmt.Sprintf("r%s.g%d-%d", round, g, counter), counter)
					counter++
				}
				// The producer's own state says how far it got, in the
				// records' transaction: after SIGKILL it must match the
				// last record on disk, never run ahead or lag behind.
				prod := fmt.Sprintf("r%s.g%d", round, g)
				seqs, err := b.AppendWithState(context.Background(), []State{{Key: "producer/" + prod, Value: []byte(strconv.Itoa(counter - 1))}}, recs...)
				if err != nil {
					say("E append " + err.Error() + "\n")
					os.Exit(3)
				}
				var sb strings.Builder
				for i, s := range seqs {
					fmt.Fprintf(&sb, "A %d %s\n", s, recs[i].Reading.Meter)
				}
				say(sb.String())
			}
		}()
	}
	go func() {
		var after uint64
		for {
			recs, err := b.Read(after, 400)
			if err != nil {
				say("E read " + err.Error() + "\n")
				os.Exit(3)
			}
			if len(recs) > 100 {
				upTo := recs[len(recs)/2].Seq
				if err := b.AckUpTo(upTo); err != nil {
					say("E ack " + err.Error() + "\n")
					os.Exit(3)
				}
				say(fmt.Sprintf("K %d\n", upTo))
				after = upTo
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	select {}
}
