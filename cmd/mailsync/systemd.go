package main

import (
	"context"
	"log/slog"
	"strings"
	stdsync "sync"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// notifier speaks systemd's notify protocol (sd_notify(3)) for Type=notify
// units. Without $NOTIFY_SOCKET every method does nothing, so the daemon
// runs the same outside systemd.
type notifier struct {
	log *slog.Logger
	// send is sddaemon.SdNotify; a field so a failure path can be tested.
	send func(unsetEnv bool, state string) (bool, error)
}

func newNotifier(log *slog.Logger) *notifier {
	return &notifier{log: log, send: sddaemon.SdNotify}
}

func (n *notifier) notify(state string) {
	if _, err := n.send(false, state); err != nil {
		// Not fatal: systemd would time out the start and say so itself.
		n.log.Warn("systemd notify failed", "error", err)
	}
}

// ready says start-up (or a reload) is finished.
func (n *notifier) ready(status string) {
	n.notify(sddaemon.SdNotifyReady + "\nSTATUS=" + oneLine(status))
}

// reloading says a reload began; ready must follow. MONOTONIC_USEC lets
// systemd (253+, Type=notify-reload) match the reload to its request.
func (n *notifier) reloading() {
	n.notify(sddaemon.SdNotifyReloading + "\n" + strings.TrimSuffix(sddaemon.SdNotifyMonotonicUsec(), "\n"))
}

// stopping says shutdown began, so systemd does not count the time the
// in-flight deliveries take against a restart.
func (n *notifier) stopping(status string) {
	n.notify(sddaemon.SdNotifyStopping + "\nSTATUS=" + oneLine(status))
}

// status updates the one-line status `systemctl status` shows.
func (n *notifier) status(status string) {
	n.notify("STATUS=" + oneLine(status))
}

// oneLine keeps a STATUS= value on one line: a newline would start a new
// assignment in the datagram.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// healthFunc reports whether the daemon is healthy and, if not, why. It
// may block: a health check that hangs means a wedged daemon, and then no
// WATCHDOG=1 is sent, which is what makes systemd restart it.
type healthFunc func() (ok bool, reason string)

// startWatchdog sends WATCHDOG=1 at half the interval systemd asked for
// (WatchdogSec=, seen as $WATCHDOG_USEC) while healthy says so. It does
// nothing when the watchdog is off. stop ends the loop and waits for it.
func (n *notifier) startWatchdog(ctx context.Context, healthy healthFunc) (stop func()) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog settings unreadable; watchdog off", "error", err)
		return func() {}
	}
	if interval <= 0 {
		return func() {}
	}
	n.log.Info("systemd watchdog on", "interval", interval)
	ticker := time.NewTicker(interval / 2)
	ctx, cancel := context.WithCancel(ctx)
	var wg stdsync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.watchdogLoop(ctx, ticker.C, healthy)
	}()
	return func() {
		cancel()
		wg.Wait()
		ticker.Stop()
	}
}

// watchdogLoop pings on each tick that finds the daemon healthy. Health
// changes are logged once each way, not on every tick.
func (n *notifier) watchdogLoop(ctx context.Context, tick <-chan time.Time, healthy healthFunc) {
	wasOK := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		ok, reason := healthy()
		switch {
		case ok:
			n.notify(sddaemon.SdNotifyWatchdog)
			if !wasOK {
				n.log.Info("healthy again; watchdog pings resumed")
			}
		case wasOK:
			n.log.Error("unhealthy; watchdog pings withheld, systemd will restart the daemon if this lasts", "reason", reason)
		}
		wasOK = ok
	}
}
