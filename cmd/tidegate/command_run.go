package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/cmd/tidegate/internal/daemon"
)

// runRun is the daemon. SIGTERM/SIGINT cancel ctx (main's NotifyContext);
// SIGHUP reloads the config file.
func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("run", e)
	cfgFlag := fs.String("config", "", "config file (default $TIDEGATE_CONFIG or "+defaultConfigPath+")")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	path := configPath(*cfgFlag)
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		var ps *config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintln(e.stderr, ps.Error())
			return usageErrorf("%d problem(s) in %s; not starting", len(ps.List), path)
		}
		return usageError(err)
	}
	log := daemon.NewLogger(e.stderr, cfg.Log.Level, cfg.Log.Format)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d := daemon.New(daemon.Options{Config: cfg, ConfigPath: path, Version: readBuildInfo().short(), Log: log})
	return d.Run(ctx, hup)
}
