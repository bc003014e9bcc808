package drivers

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"tidegate/simulator"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv("TIDEGATE_SIM_HELPER"); cfg != "" {
		os.Exit(simHelper(cfg))
	}
	os.Exit(m.Run())
}

// simHelper is metersim in a process of its own (this test binary run
// again), so that a benchmark's CPU is the master's alone: it prints bus
// a's ports as JSON, then bus a's replies so far for each line on stdin,
// and stops at the end of stdin.
func simHelper(yaml string) int {
	cfg, err := simulator.ParseConfig("testdata/sim.yaml", []byte(yaml))
	if err == nil {
		var sim *simulator.Sim
		if sim, err = simulator.Start(context.Background(), cfg, nil); err == nil {
			defer sim.Close()
			json.NewEncoder(os.Stdout).Encode(sim.Ports()["a"])
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				fmt.Println(sim.Bus("a").Stats().Replies)
			}
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// remoteSim is a simulator run by simHelper.
type remoteSim struct {
	port simulator.PortInfo
	cmd  *exec.Cmd
	in   *bufio.Writer
	out  *bufio.Scanner
}

func startRemoteSim(tb testing.TB, yaml string) *remoteSim {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TIDEGATE_SIM_HELPER="+yaml)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	r := &remoteSim{cmd: cmd, in: bufio.NewWriter(in), out: bufio.NewScanner(out)}
	tb.Cleanup(func() { in.Close(); cmd.Wait() })
	if !r.out.Scan() {
		tb.Fatal("simulator helper did not start")
	}
	if err := json.Unmarshal(r.out.Bytes(), &r.port); err != nil {
		tb.Fatal(err)
	}
	return r
}

// replies is how many answers the simulator has sent.
func (r *remoteSim) replies() int64 {
	r.in.WriteString("\n")
	r.in.Flush()
	var n int64
	if r.out.Scan() {
		fmt.Sscan(r.out.Text(), &n)
	}
	return n
}
