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
	"sync"
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
	// The stream lasts as long as the client wants it: the server's write
	// timeout would end it, so each record gets its own deadline instead,
	// and a client that stops reading is dropped after one.
	rc := http.NewResponseController(w)
	wt := d.apiLimits.orDefaults().WriteTimeout
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(wt))
	fl.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case j := <-ch:
			_ = rc.SetWriteDeadline(time.Now().Add(wt))
			if enc.Encode(j) != nil {
				return
			}
			fl.Flush()
		}
	}
}

// apiLimits bound what the clients of one listener can hold: a slow or idle
// client costs a goroutine and a descriptor per connection until a timeout
// ends it, so both are bounded. The zero value is the defaults.
type apiLimits struct {
	HeaderTimeout time.Duration // a request's headers must have arrived within this
	IdleTimeout   time.Duration // a kept-alive connection with no request is closed after this
	// WriteTimeout bounds writing an answer, counted from the end of the
	// request's headers (so it covers the 30 s a read or valve command
	// may take), and each record of a tail from when it is written.
	WriteTimeout time.Duration
	MaxConns     int   // connections open at once per listener
	MaxBody      int64 // bytes of a request body (the API takes its arguments in the query)
	MaxHeader    int   // bytes of a request's headers
}

func (l apiLimits) orDefaults() apiLimits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.HeaderTimeout, 5*time.Second)
	def(&l.IdleTimeout, 30*time.Second)
	def(&l.WriteTimeout, 45*time.Second)
	if l.MaxConns <= 0 {
		l.MaxConns = 32 // a CLI or two, a few tails, a scraper, with room to spare
	}
	if l.MaxBody <= 0 {
		l.MaxBody = 64 << 10
	}
	if l.MaxHeader <= 0 {
		l.MaxHeader = 16 << 10
	}
	return l
}

// server is an http.Server for one listener, within the limits; the
// listener is wrapped so it holds at most l.MaxConns connections.
func (l apiLimits) server(h http.Handler, ln net.Listener, base func(net.Listener) context.Context) (*http.Server, net.Listener) {
	cl := &connCap{Listener: ln, max: l.MaxConns, conns: map[net.Conn]connSlot{}}
	srv := &http.Server{
		Handler:           capBody(l.MaxBody, h),
		BaseContext:       base,
		ReadHeaderTimeout: l.HeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		WriteTimeout:      l.WriteTimeout,
		MaxHeaderBytes:    l.MaxHeader,
		ConnState:         cl.track,
	}
	return srv, cl
}

// capBody refuses a body larger than max before the handler sees it, and
// cuts one that grows past it (chunked, or lying about its length).
func capBody(max int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("request body of %d bytes, at most %d", r.ContentLength, max)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}

// connCap holds at most max connections of a listener. A connection past
// the cap makes room by closing the one that has waited longest with no
// request in flight (a client that connected and said nothing, an idle
// keep-alive): a local client flooding the socket cannot lock the
// technician out of status. When every connection is busy (tails), the
// newcomer is closed instead.
type connCap struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]connSlot
}

type connSlot struct {
	busy  bool      // a request in flight
	since time.Time // when it last became idle (or connected)
}

func (c *connCap) Accept() (net.Conn, error) {
	for {
		nc, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		victim, ok := c.admit(nc)
		if victim != nil {
			victim.Close()
		}
		if ok {
			// Returned unwrapped: the peer's credentials (SO_PEERCRED)
			// are read from the *net.UnixConn itself.
			return nc, nil
		}
		nc.Close()
	}
}

// admit records nc if there is room or an idle connection to close (the
// victim, closed by the caller outside the lock).
func (c *connCap) admit(nc net.Conn) (victim net.Conn, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.conns) >= c.max {
		var oldest time.Time
		for k, s := range c.conns {
			if !s.busy && (victim == nil || s.since.Before(oldest)) {
				victim, oldest = k, s.since
			}
		}
		if victim == nil {
			return nil, false
		}
		delete(c.conns, victim)
	}
	c.conns[nc] = connSlot{since: time.Now()}
	return victim, true
}

// track follows the server's view of each connection (http.Server.ConnState).
func (c *connCap) track(nc net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.conns[nc]
	if !ok {
		return // closed to make room, or refused
	}
	switch st {
	case http.StateActive:
		s.busy = true
	case http.StateIdle:
		s.busy, s.since = false, time.Now()
	case http.StateClosed, http.StateHijacked:
		delete(c.conns, nc)
		return
	}
	c.conns[nc] = s
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
	lim := d.apiLimits.orDefaults()
	base := func(net.Listener) context.Context { return ctx }
	srv, cln := lim.server(d.handler(az), ln, base)
	srv.ConnContext = withPeer
	a.servers = append(a.servers, srv)
	go func() { _ = srv.Serve(cln) }()
	d.log.WithField("socket", cfg.API.Socket).Info("control API listening")
	if cfg.API.Metrics != "" {
		mln, err := net.Listen("tcp", cfg.API.Metrics)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("metrics listener on %s: %w", cfg.API.Metrics, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", d.serveMetrics)
		msrv, cmln := lim.server(mux, mln, base)
		a.servers = append(a.servers, msrv)
		go func() { _ = msrv.Serve(cmln) }()
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
