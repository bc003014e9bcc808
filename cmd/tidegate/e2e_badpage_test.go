package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"tidegate/buffer"
	"tidegate/reading"
)

// liveLeaves parses a compacted bbolt file's pages (header: id u64, flags
// u16, count u16, overflow u32; leaf elements: flags, pos, ksize, vsize) and
// returns the seqs of the stored records (8-byte keys, record format 3) of
// each leaf page. A compacted file has no stale page.
func liveLeaves(raw []byte) map[int][]uint64 {
	const ps = 4096
	out := map[int][]uint64{}
	for id := 2; (id+1)*ps <= len(raw); id++ {
		p := raw[id*ps : (id+1)*ps]
		if binary.LittleEndian.Uint64(p) != uint64(id) || binary.LittleEndian.Uint16(p[8:]) != 0x02 {
			continue
		}
		for i := 0; i < int(binary.LittleEndian.Uint16(p[10:])) && 32+16*i <= ps; i++ {
			e := 16 + 16*i
			k := e + int(binary.LittleEndian.Uint32(p[e+4:]))
			if binary.LittleEndian.Uint32(p[e+8:]) == 8 && k+9 <= ps && p[k+8] == 3 {
				out[id] = append(out[id], binary.BigEndian.Uint64(p[k:k+8]))
			}
		}
	}
	return out
}

// TestE2EPageGoesBadUnderDaemon: a tidegate process holds a 20,000-record
// backlog (its broker not reachable yet); two leaf pages in the middle of
// it are overwritten under the running daemon; then the broker comes. The
// daemon salvages the file without a restart and the uplink carries on:
// at least 99 % of the records outside the two pages reach the service,
// each under its own id, and the seqs of the two pages are named in a
// buffer_evicted event (reason salvage). (Before: the first Read across
// the page returned ErrCorrupt, the uplink stopped, the process lived on,
// and the file was moved aside with its backlog.)
func TestE2EPageGoesBadUnderDaemon(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	bin := buildBinaries(t)
	mq := startMosquittoProc(t)
	// tidegate reaches the broker through a gate the test opens once the
	// pages are damaged; the service is subscribed from the start.
	gate := newGate(t, mq.addr)
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db")

	// The backlog, written as the daemon would have, compacted so that
	// every leaf page in the file is live.
	const n = 20000
	b, err := buffer.Open(path, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).UTC()
	meterOf := map[uint64]string{}
	for i := 0; i < n; i += 500 {
		recs := make([]reading.Record, 500)
		for j := range recs {
			recs[j] = reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{
				Meter: fmt.Sprintf("pre-%03d", (i+j)%250), Received: at.Add(time.Duration(i+j) * time.Second), Forward: float64(i + j), Has: reading.HasForward}}
		}
		seqs, err := b.Append(context.Background(), recs...)
		if err != nil {
			t.Fatal(err)
		}
		for k, s := range seqs {
			meterOf[s] = recs[k].Reading.Meter
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := buffer.Compact(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var first uint64 = 1<<64 - 1
	for s := range meterOf {
		first = min(first, s)
	}
	leaves := liveLeaves(raw)
	var ids []int
	for id, seqs := range leaves {
		if seqs[0] > first+n/4 && seqs[0] < first+3*n/4 {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	if len(ids) < 10 {
		t.Fatalf("only %d leaf pages in the middle of the backlog", len(ids))
	}
	bad := []int{ids[2], ids[len(ids)-3]}
	damaged := map[uint64]bool{}
	for _, id := range bad {
		for _, s := range leaves[id] {
			damaged[s] = true
		}
	}

	// The service: every record by id, and the salvage's ranges.
	var mu sync.Mutex
	got := map[uint64]string{}
	var named []string
	opts := paho.NewClientOptions().AddBroker("tcp://" + mq.addr).SetClientID("central").SetAutoReconnect(true).
		SetConnectRetry(true).SetMaxReconnectInterval(200 * time.Millisecond).SetOrderMatters(false)
	opts.SetOnConnectHandler(func(c paho.Client) {
		c.Subscribe("e2e/v1/+/+", 1, func(_ paho.Client, m paho.Message) {
			var doc struct {
				Batch []map[string]any `json:"batch"`
			}
			var one map[string]any
			if json.Unmarshal(m.Payload(), &doc) != nil || json.Unmarshal(m.Payload(), &one) != nil {
				return
			}
			if len(doc.Batch) == 0 && one["id"] != nil {
				doc.Batch = append(doc.Batch, one)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range doc.Batch {
				id, _ := r["id"].(string)
				seq, err := strconv.ParseUint(strings.TrimPrefix(id, "gw-e2e:"), 10, 64)
				if err != nil {
					continue
				}
				meter, _ := r["meter"].(string)
				got[seq] = meter
				if r["type"] == "buffer_evicted" {
					if attrs, ok := r["attrs"].(map[string]any); ok && attrs["reason"] == "salvage" {
						named = append(named, fmt.Sprint(attrs["ranges"]))
					}
				}
			}
		})
	})
	svc := paho.NewClient(opts)
	if tok := svc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("central service: %v", tok.Error())
	}
	defer svc.Disconnect(100)

	ports := startMetersim(t, bin, dir, `buses:
  - name: rtu
    protocol: modbus
    baud: 38400
    turnaround: 2ms
    meters:
      - {id: m1, address: 1, profile: dynaflox-ultrad, water: {profile: flat, persons: 4, use_scale: 5}}
`)
	cfg := filepath.Join(dir, "tidegate.yaml")
	buses := "  - {name: rtu, protocol: modbus, device: " + ports["rtu"] + ", baud: 38400, timeout: 200ms}\n"
	meters := "  - {id: m1, bus: rtu, address: 1, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}"
	if err := os.WriteFile(cfg, []byte(e2eConfig(dir, gate.addr, buses, meters)), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	eventually(t, 20*time.Second, "the daemon serves its API (its buffer open)", func() bool {
		_, err := status(t, filepath.Join(dir, "api.sock"))
		return err == nil
	})
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0xa5, 0x5a, 0x00, 0xff}, 4096/4)
	for _, id := range bad {
		f.WriteAt(junk, int64(id)*4096) // the daemon's mapping sees it at once
	}
	f.Close()
	gate.open()

	readable := n - len(damaged)
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for s := range meterOf {
			if !damaged[s] && got[s] != "" {
				c++
			}
		}
		return c
	}
	eventually(t, 120*time.Second, "the backlog's readable records at the service", func() bool { return delivered() >= readable })
	mu.Lock()
	for s, m := range got {
		if want, ok := meterOf[s]; ok && m != want {
			t.Errorf("id %d carries meter %s's reading, it was %s's", s, m, want)
		}
	}
	joined := strings.Join(named, ",")
	mu.Unlock()
	for s := range damaged {
		if got[s] != "" {
			continue
		}
		if !strings.Contains(joined, fmt.Sprint(s)) && !inRanges(joined, s) {
			t.Errorf("seq %d of a damaged page neither delivered nor named in a salvage range (%s)", s, joined)
		}
	}
	t.Logf("%d of %d readable records delivered after two leaf pages (%d records) went bad under the daemon; salvage ranges %s",
		delivered(), readable, len(damaged), joined)
	if out := tg.out.String(); strings.Contains(out, "will not be sent") || !strings.Contains(out, "salvag") {
		t.Errorf("the daemon's log does not say the records were salvaged:\n%s", tailLines(out, 30))
	}
	if code := tg.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
}

// inRanges reports whether s is in a "1-3,5" list.
func inRanges(list string, s uint64) bool {
	for _, part := range strings.Split(list, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			continue
		}
		to := from
		if isRange {
			to, _ = strconv.ParseUint(b, 10, 64)
		}
		if from <= s && s <= to {
			return true
		}
	}
	return false
}

// gate is a TCP forwarder to a broker that refuses connections (accepts and
// closes them) until it is opened.
type gate struct {
	addr   string
	mu     sync.Mutex
	isOpen bool
}

func newGate(t *testing.T, to string) *gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	g := &gate{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			ok := g.isOpen
			g.mu.Unlock()
			if !ok {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
	return g
}

func (g *gate) open() { g.mu.Lock(); g.isOpen = true; g.mu.Unlock() }
