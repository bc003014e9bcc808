package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
)

// A client that opens connections to the control socket and leaves them
// idle (silent, or kept alive after a request) holds a bounded number of
// goroutines; status still answers while they are open; an idle keep-alive
// is closed; a tail keeps streaming past the idle and write timeouts; a
// body over the cap is refused before the handler runs.
func TestAPIIdleConnectionsBounded(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	writeConfig(t, cfgPath, dir, "  - {id: m1, bus: a, address: 1, profile: tuf2000m}")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := New(Options{Config: cfg, ConfigPath: cfgPath, Version: "test", Log: discardLog()})
	// A header timeout longer than the test: only the cap and the idle
	// timeout can free what the flood holds.
	lim := apiLimits{HeaderTimeout: time.Minute, IdleTimeout: 300 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxConns: 8, MaxBody: 1024}
	d.apiLimits = lim
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, make(chan os.Signal)) }()
	defer func() {
		cancel()
		<-done
	}()
	sock := filepath.Join(dir, "api.sock")
	cl := unixClient(sock)
	status := func() bool {
		resp, err := cl.Get("http://x/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st Status
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil && st.Gateway == "gw-test"
	}
	waitFor(t, status)
	cl.CloseIdleConnections()

	// A tail, busy for the whole test: never the one closed to make room.
	tc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	tresp, err := tc.Get("http://x/v1/tail")
	if err != nil {
		t.Fatal(err)
	}
	defer tresp.Body.Close()
	lines := bufio.NewScanner(tresp.Body)

	time.Sleep(200 * time.Millisecond)
	g0 := runtime.NumGoroutine()
	const flood = 80
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		held = append(held, c)
	}
	// Kept alive after one request each.
	var kept []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("keep-alive status: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		kept = append(kept, c)
	}
	time.Sleep(500 * time.Millisecond) // the server has taken every connection it will
	if g := runtime.NumGoroutine(); g-g0 > 2*lim.MaxConns+20 {
		t.Errorf("%d connections left idle: goroutines %d -> %d", flood+len(kept), g0, g)
	}
	if !status() {
		t.Error("status does not answer while the socket is flooded")
	}
	// The keep-alives were idle past the idle timeout (or closed to make
	// room): the server has closed them.
	for i, c := range kept {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("idle keep-alive %d: read %v, want EOF (closed by the server)", i, err)
		}
	}

	// The tail streams on past the idle and write timeouts.
	time.Sleep(3 * lim.WriteTimeout)
	got := make(chan string, 1)
	go func() {
		if lines.Scan() {
			got <- lines.Text()
		}
		close(got)
	}()
	d.ingest(reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m1", Received: time.Now(), Has: reading.HasForward, Forward: 3.25}})
	select {
	case l, ok := <-got:
		if !ok || !strings.Contains(l, `"m1"`) {
			t.Errorf("tail after %s idle: %q (open %v, %v)", 3*lim.WriteTimeout, l, ok, lines.Err())
		}
	case <-time.After(10 * time.Second):
		t.Error("tail gave nothing within 10s of a record")
	}

	// A body over the cap never reaches the handler.
	resp, err := cl.Post("http://x/v1/read?meter=m1", "application/octet-stream", strings.NewReader(strings.Repeat("x", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 1 MiB body: %s, want 413", resp.Status)
	}
}
