package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"

	"tidegate/cmd/tidegate/internal/config"
)

// ErrDaemonDown is returned when no daemon answers on the control socket.
var ErrDaemonDown = errors.New("the tidegate daemon is not reachable")

// apiClient talks HTTP+JSON to a running daemon over its Unix socket.
type apiClient struct {
	socket string
	http   *http.Client
}

func newAPIClient(socket string) *apiClient {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &apiClient{socket: socket, http: &http.Client{Transport: tr}}
}

// socketFlags adds --config and --socket to a verb that talks to the daemon,
// and returns a function resolving the socket path: --socket wins, then the
// config's api.socket, then the default.
func socketFlags(fs *flag.FlagSet) func() string {
	cfgFlag := fs.String("config", "", "config file, to find the control socket")
	sock := fs.String("socket", "", "control socket (default: the config's api.socket)")
	return func() string {
		if *sock != "" {
			return *sock
		}
		if c, err := config.Load(configPath(*cfgFlag), os.Getenv); err == nil {
			return c.API.Socket
		}
		return "/run/tidegate/tidegate.sock"
	}
}

func (c *apiClient) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://tidegate"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EACCES):
			return nil, fmt.Errorf("%w: permission denied on %s (add yourself to the socket's group, or use sudo)", ErrDaemonDown, c.socket)
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("%w: no daemon at %s (start it with 'tidegate run' or 'systemctl start tidegate')", ErrDaemonDown, c.socket)
		}
		return nil, fmt.Errorf("%w: %v", ErrDaemonDown, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("daemon answered %s", resp.Status)
	}
	return resp, nil
}

func (c *apiClient) getJSON(ctx context.Context, method, path string, v any) error {
	resp, err := c.do(ctx, method, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
