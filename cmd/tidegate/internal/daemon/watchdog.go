package daemon

import (
	"context"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
)

// systemd's notify protocol (Type=notify, WatchdogSec): READY once the
// daemon runs, RELOADING/READY around a SIGHUP, STOPPING on shutdown, and
// a watchdog ping only while the data path is alive. Without NOTIFY_SOCKET
// (not under systemd) every call is a no-op.

func notify(log *logrus.Logger, state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		log.WithError(err).WithField("state", state).Warn("systemd notify failed")
	}
}

// watchdog pings systemd every third of WatchdogSec, but only after both
// the pipeline owner and the uplink's sending loop have answered a
// liveness probe within that third: an owner stuck in an append on a disk
// that hangs, or an uplink wedged in a queue call, stops the pings and
// systemd restarts the process. A bare ticker would ping for a wedged
// process forever.
func (d *Daemon) watchdog(ctx context.Context) {
	every, err := sd.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return
	}
	every /= 3
	t := time.NewTicker(every)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		actx, cancel := context.WithTimeout(ctx, every)
		ok, which := d.alive(actx)
		cancel()
		if ok {
			missed = 0
			notify(d.log, sd.SdNotifyWatchdog)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		missed++
		d.log.WithFields(logrus.Fields{"part": which, "missed": missed}).Error("watchdog: a part does not answer; not pinging systemd")
	}
}

// alive asks the pipeline owner and the uplink's sending loop to turn once.
func (d *Daemon) alive(ctx context.Context) (bool, string) {
	p := d.path()
	if !p.Own.Alive(ctx) {
		return false, "pipeline"
	}
	if p.Up() != nil && !p.Up().Alive(ctx) {
		return false, "uplink"
	}
	return true, ""
}
