package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/drivers"
	"tidegate/reading"
)

// ErrAlreadyRunning is returned when another daemon answers on the socket.
var ErrAlreadyRunning = errors.New("another tidegate is already serving this control socket")

// apiServer is the local control API on a Unix socket (and /metrics on TCP
// when configured).
type apiServer struct {
	servers []*http.Server
	cancel  context.CancelFunc
	socket  string
}

func (d *Daemon) handler(a authz) http.Handler {
	mux := http.NewServeMux()
	read := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, d.guard(a, accessRead, h)) }
	act := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, d.guard(a, accessControl, h)) }
	read("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.status())
	})
	read("GET /v1/readings", func(w http.ResponseWriter, r *http.Request) {
		meter := r.URL.Query().Get("meter")
		out := []reading.RecordJSON{}
		for _, m := range d.config().Meters {
			if meter != "" && m.ID != meter && m.Number != meter {
				continue
			}
			if j, ok := d.hub.lastOf(m.ID); ok {
				out = append(out, j)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	act("POST /v1/read", func(w http.ResponseWriter, r *http.Request) {
		meter := r.URL.Query().Get("meter")
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		j, err := d.readNow(ctx, meter)
		switch {
		case errors.Is(err, ErrUnknownMeter):
			writeJSON(w, http.StatusNotFound, apiError{err.Error()})
		case err != nil:
			writeJSON(w, http.StatusBadGateway, apiError{err.Error()})
		default:
			writeJSON(w, http.StatusOK, j)
		}
	})
	act("POST /v1/valve", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		j, err := d.valve(ctx, valveRequest{ID: q.Get("request"), Meter: q.Get("meter"), Action: q.Get("action"),
			Operator: q.Get("operator"), Sender: peerFrom(r.Context()).String()})
		switch {
		case errors.Is(err, ErrUnknownMeter):
			writeJSON(w, http.StatusNotFound, apiError{err.Error()})
		case errors.Is(err, ErrBadValveAction), errors.Is(err, drivers.ErrValveNotEnabled):
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		case errors.Is(err, ErrValveRate):
			writeJSON(w, http.StatusTooManyRequests, apiError{err.Error()})
		case err != nil && j.Outcome == "":
			writeJSON(w, http.StatusBadGateway, apiError{err.Error()})
		default:
			writeJSON(w, http.StatusOK, j) // a refused or failed write is a result, with its outcome
		}
	})
	read("GET /v1/tail", d.serveTail)
	read("GET /metrics", d.serveMetrics)
	return mux
}

// apiError is every error body.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// serveTail streams records as JSON lines until the client goes away or the daemon stops.
func (d *Daemon) serveTail(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, apiError{"streaming unsupported"})
		return
	}
	ch, cancel := d.hub.subscribe(r.URL.Query().Get("meter"))
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case j := <-ch:
			if enc.Encode(j) != nil {
				return
			}
			fl.Flush()
		}
	}
}

func (d *Daemon) serveAPI(cfg *config.Config) (*apiServer, error) {
	ctx, cancel := context.WithCancel(context.Background())
	a := &apiServer{cancel: cancel, socket: cfg.API.Socket}
	az, err := newAuthz(cfg.API.ControlGroup)
	if err != nil {
		cancel()
		return nil, err
	}
	ln, err := listenSocket(cfg.API.Socket, cfg.API.Group)
	if err != nil {
		cancel()
		return nil, err
	}
	h := d.handler(az)
	base := func(net.Listener) context.Context { return ctx }
	srv := &http.Server{Handler: h, BaseContext: base, ConnContext: withPeer, ReadHeaderTimeout: 5 * time.Second}
	a.servers = append(a.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	d.log.WithField("socket", cfg.API.Socket).Info("control API listening")
	if cfg.API.Metrics != "" {
		mln, err := net.Listen("tcp", cfg.API.Metrics)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("metrics listener on %s: %w", cfg.API.Metrics, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", d.serveMetrics)
		msrv := &http.Server{Handler: mux, BaseContext: base, ReadHeaderTimeout: 5 * time.Second}
		a.servers = append(a.servers, msrv)
		go func() { _ = msrv.Serve(mln) }()
		d.log.WithField("address", mln.Addr().String()).Info("metrics listening")
	}
	return a, nil
}

func (a *apiServer) close() {
	a.cancel() // ends tail streams, so Shutdown need not wait for them
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range a.servers {
		_ = s.Shutdown(ctx)
	}
	_ = os.Remove(a.socket)
}

// listenSocket creates the control socket with mode 0660, replacing a stale
// one left by a crash but never one a live daemon answers on.
func listenSocket(path, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s", ErrAlreadyRunning, path)
		}
		_ = os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket mode: %w", err)
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket group: %w", err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket group %s: %w", group, err)
		}
	}
	return ln, nil
}
