package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
	"tidegate/simulator"
)

// A valve write whose answer comes after the command's deadline may have
// moved the valve: over a real pty, metersim's valve meter answering
// late, the command's outcome is "unknown", the status is read back with
// a context of its own (it shows what the meter did), and the command
// leaves exactly one valve event.
func TestValveUnknownReadsBack(t *testing.T) {
	scfg, err := simulator.ParseConfig("sim.yaml", []byte(`
buses:
  - name: cj
    protocol: cjt188
    baud: 9600
    meters:
      - {id: v, address: "78330011223344", valve: true, faults: {late: 1, late_by: 1200ms}}
`))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.Start(context.Background(), scfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	pi := sim.Ports()["cj"]

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	// Every answer is 1.2 s late: within the bus's timeout (a poll and
	// the read-back succeed), past the command's 400 ms.
	y := `gateway: {id: gw-test}
api: {socket: ` + filepath.Join(dir, "api.sock") + `}
buses:
  - {name: cj, protocol: cjt188, device: ` + pi.Device + `, baud: 9600, timeout: 3s}
meters:
  - {id: v, bus: cj, address: "78330011223344", valve: true, poll: {flow: 1h, totals: 1h}}
buffer: {path: ` + filepath.Join(dir, "buf.db") + `}
mqtt: {broker: "tcp://127.0.0.1:1"}
`
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := New(Options{Config: cfg, ConfigPath: cfgPath, Version: "test", Log: discardLog()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, make(chan os.Signal)) }()
	defer func() {
		cancel()
		<-done
	}()
	// The meter answers (late, within the bus's timeout) before the test.
	deadline := time.Now().Add(30 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := d.readNow(rctx, "v")
		rcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reading of v within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	events, unsub := d.hub.subscribe("v")
	defer unsub()

	cctx, ccancel := context.WithTimeout(ctx, 400*time.Millisecond)
	j, err := d.valve(cctx, valveRequest{ID: "late-1", Meter: "v", Action: "close", Sender: "test"})
	ccancel()
	if err == nil || j.Outcome != ValveUnknown {
		t.Fatalf("a write answered after the deadline: outcome %q (%v), want %q", j.Outcome, err, ValveUnknown)
	}
	// The meter acted on the write when it heard it; only its answer was
	// late. The read-back says so.
	if j.Reading == nil || j.Valve != "closed" {
		t.Fatalf("read back: valve %q, reading %+v; want closed, read", j.Valve, j.Reading)
	}

	// Exactly one valve event for the command: the gateway's "unknown".
	var got []reading.RecordJSON
	quiet := time.NewTimer(3 * time.Second) // the late answer and any retry have long passed by then
	defer quiet.Stop()
collect:
	for {
		select {
		case r := <-events:
			if r.Kind == "event" && r.Type == "valve" && r.Attrs["request"] == "late-1" {
				got = append(got, r)
			}
		case <-quiet.C:
			break collect
		}
	}
	if len(got) != 1 || got[0].Attrs["outcome"] != ValveUnknown || got[0].Attrs["valve"] != "closed" {
		t.Fatalf("valve events of late-1: %+v, want one, outcome unknown, valve closed", got)
	}
}
