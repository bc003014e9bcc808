package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/cmd/tidegate/internal/datapath"
)

// defaultConfigPath is where the daemon and the technician verbs look when
// neither --config nor TIDEGATE_CONFIG says otherwise.
const defaultConfigPath = "/etc/tidegate/tidegate.yaml"

func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := os.Getenv("TIDEGATE_CONFIG"); p != "" {
		return p
	}
	return defaultConfigPath
}

func runConfig(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || wantsHelp(args[:1]) {
		if len(args) > 0 {
			return helpFor(e, "config init", "config validate")
		}
		return usageErrorf("expected 'config init' or 'config validate [FILE]'")
	}
	switch args[0] {
	case "init":
		return runConfigInit(e, args[1:])
	case "validate":
		return runConfigValidate(e, args[1:])
	}
	return usageErrorf("unknown subcommand %q; expected init or validate", args[0])
}

func runConfigInit(e *env, args []string) error {
	fs := newFlagSet("config init", e)
	var o config.StarterOptions
	fs.StringVar(&o.GatewayID, "gateway", "", "gateway id (default gw-0001)")
	fs.StringVar(&o.Broker, "broker", "", "MQTT broker URL (default tls://mqtt.example.net:8883)")
	fs.StringVar(&o.Device, "device", "", "serial device of the first bus (default /dev/ttyUSB0)")
	fs.StringVar(&o.Protocol, "protocol", "", "protocol of the first bus: modbus|mbus (default modbus)")
	fs.IntVar(&o.Baud, "baud", 0, "baud rate of the first bus (default 9600 modbus, 2400 mbus)")
	fs.StringVar(&o.BufferPath, "buffer", "", "buffer file (default /var/lib/tidegate/buffer.db)")
	fs.StringVar(&o.Socket, "socket", "", "control API socket (default /run/tidegate/tidegate.sock)")
	out := fs.String("o", "", "write to this file instead of standard output")
	force := fs.Bool("force", false, "overwrite an existing file")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	name := *out
	if name == "" {
		name = "tidegate.yaml"
	}
	data := config.Starter(o, name)
	if _, err := config.Parse(name, data, nil); err != nil {
		return usageErrorf("the options give an invalid config:\n%v", err)
	}
	if *out == "" {
		_, err := e.stdout.Write(data)
		return err
	}
	if *force { // a config rewritten keeps its owner, group and mode
		if err := config.WriteFile(*out, data); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote %s; next: %s\n", *out, config.ScanHint(o, *out))
		return nil
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; use --force to overwrite it", *out)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s; next: %s\n", *out, config.ScanHint(o, *out))
	return nil
}

func runConfigValidate(e *env, args []string) error {
	fs := newFlagSet("config validate", e)
	cfgFlag := fs.String("config", "", "config file (or give it as the argument)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	path := *cfgFlag
	if fs.NArg() > 1 {
		return usageErrorf("expected at most one FILE")
	}
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	path = configPath(path)
	c, err := config.Load(path, os.Getenv)
	if err != nil {
		var ps *config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintln(e.stderr, ps.Error())
			return usageErrorf("%d problem(s) in %s", len(ps.List), path)
		}
		return usageError(err)
	}
	if err := datapath.CheckUplink(c); err != nil {
		// The uplink's own check, as `run` meets it: what validate accepts
		// must start, or systemd restarts it forever.
		fmt.Fprintf(e.stderr, "%s: mqtt: %v\n", path, err)
		return usageErrorf("1 problem(s) in %s", path)
	}
	for _, w := range c.Warnings() {
		fmt.Fprintf(e.stderr, "%s: warning: %s\n", path, w)
	}
	return printValid(e.stdout, path, c)
}

func printValid(w io.Writer, path string, c *config.Config) error {
	_, err := fmt.Fprintf(w, "%s: ok (gateway %s, %d buses, %d meters)\n", path, c.Gateway.ID, len(c.Buses), len(c.Meters))
	return err
}
