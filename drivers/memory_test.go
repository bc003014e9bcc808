package drivers

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"tidegate/drivers/link"
)

// vmRSS is this process's resident set in bytes, from /proc/self/status.
func vmRSS(tb testing.TB) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); err == nil {
			return kb * 1024
		}
	}
	tb.Skip("VmRSS not found")
	return 0
}

// BenchmarkMemory250: 250 meters configured over 4 buses (3 Modbus at
// 19200 baud, 1 M-Bus at 9600), all polling metersim for two seconds. It
// reports the process's RSS and what the buses added to it, measured
// against the same process with the simulator already running.
func BenchmarkMemory250(b *testing.B) {
	for range b.N {
		var sb strings.Builder
		sb.WriteString("seed: 1\nprofiles: profiles\nbuses:\n")
		type plan struct {
			name, proto string
			baud, n     int
		}
		plans := []plan{{"m1", "modbus", 19200, 63}, {"m2", "modbus", 19200, 63}, {"m3", "modbus", 19200, 63}, {"mb", "mbus", 9600, 61}}
		cfgs := map[string][]MeterConfig{}
		profs := []string{"tuf2000m", "dynaflox-ultrad", "arad-octave"}
		for _, p := range plans {
			fmt.Fprintf(&sb, "  - name: %s\n    protocol: %s\n    baud: %d\n    turnaround: 3ms\n    meters:\n", p.name, p.proto, p.baud)
			for i := 1; i <= p.n; i++ {
				id := fmt.Sprintf("%s-%d", p.name, i)
				mc := MeterConfig{ID: id, Address: i, Interval: 30 * time.Second}
				if p.proto == "modbus" {
					mc.Profile = profs[i%3]
					fmt.Fprintf(&sb, "      - {id: %s, address: %d, profile: %s}\n", id, i, mc.Profile)
				} else {
					fmt.Fprintf(&sb, "      - {id: %s, address: %d, model: flowiq}\n", id, i)
				}
				cfgs[p.name] = append(cfgs[p.name], mc)
			}
		}
		sim := startSim(b, sb.String())
		runtime.GC()
		before := vmRSS(b)
		sink := newCollector()
		profiles := loadProfiles(b)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var buses []*Bus
		for _, p := range plans {
			pi := sim.Ports()[p.name]
			proto := ProtoModbus
			if p.proto == "mbus" {
				proto = ProtoMBus
			}
			bus, err := NewBus(BusConfig{Name: p.name, Protocol: proto, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}}, cfgs[p.name], profiles, sink, nil)
			if err != nil {
				b.Fatal(err)
			}
			buses = append(buses, bus)
			wg.Add(1)
			go func() { defer wg.Done(); bus.Run(ctx) }()
		}
		time.Sleep(2 * time.Second)
		after := vmRSS(b)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		polls := int64(0)
		for _, bus := range buses {
			polls += bus.Stats().PollsOK
		}
		cancel()
		wg.Wait()
		if polls == 0 {
			b.Fatal("no meter was read")
		}
		b.ReportMetric(after/(1<<20), "rss_MiB")
		b.ReportMetric((after-before)/(1<<20), "buses_rss_MiB")
		b.ReportMetric((after-before)/250/1024, "KiB/meter")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap_inuse_MiB")
		b.ReportMetric(float64(polls), "polls_in_2s")
	}
}
