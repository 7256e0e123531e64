package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
)

func (m *Main) runCommand() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the sync daemon",
		Long: `Run connects to every configured account, catches up on what arrived since the
last run, then holds IDLE and hands every new message to the sink.

SIGTERM or SIGINT stops it gracefully (deliveries in flight may finish within
sync.shutdown_grace); a second signal stops it at once. Before anything starts
it runs the same preflight as "mailsync check" (config, files it names, state
directory, admin.listen, sink) and refuses to start with the key at fault.`,
		Example: `  mailsync run --config /etc/mailsync/config.yaml
  MAILSYNC_CONFIG=./mailsync.yaml mailsync run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, os.Stderr)
			// The same preflight as check: what it fails, run refuses.
			findings := preflight(cfg, false)
			if err := preflightError(findings); err != nil {
				return err
			}
			for _, f := range findings {
				log.Warn(f.err.Error())
			}
			d, err := openDaemon(cfg, log, daemonOptions{cfgPath: cfgPath})
			if err != nil {
				return err
			}
			defer d.close()
			d.sayWhatItDoes(cmd.Context())
			ctx := cmd.Context()
			hard, stopSignals := secondSignal(ctx)
			defer stopSignals()
			// Control socket, admin HTTP server, SIGHUP reloads and systemd
			// notifications (admin.go); stopped after the workers, so
			// status answers during a graceful stop.
			ops, err := d.startOperations(ctx)
			if err != nil {
				return err
			}
			defer ops.stop()
			d.runUntil(ctx, hard, ops.started)
			ops.stop()
			return d.close()
		},
	}
	configFlag(cmd, &cfgPath, "configuration file")
	return cmd
}

// sayWhatItDoes logs, once at start, what a new admin would otherwise
// find out by watching nothing happen: accounts that cannot capture
// anything, folders that start empty on purpose (start: now), submission
// servers that do not answer.
func (d *daemon) sayWhatItDoes(ctx context.Context) {
	_, hasDir := d.sink.(matcher.Directory)
	for _, w := range directoryWarnings(d.cfg, hasDir) {
		d.log.Warn(w.Error())
	}
	for i := range d.cfg.Accounts {
		a := &d.cfg.Accounts[i]
		if err := smtpReachable(ctx, a); err != nil {
			d.log.Warn("mail sent from the CRM will wait: " + err.Error())
		}
	}
	fresh := map[string]bool{}
	_ = d.store.View(func(tx *store.Tx) error {
		for _, a := range d.cfg.Accounts {
			fs, err := tx.Folders(a.ID)
			fresh[a.ID] = err == nil && len(fs) == 0
		}
		return nil
	})
	for _, n := range startNowNotes(d.cfg) {
		if fresh[n.account] {
			d.log.Info(n.text)
		}
	}
}

// secondSignal returns a channel closed by the second SIGINT/SIGTERM: the
// first one cancels ctx (main's NotifyContext), the second one skips the
// graceful wait (as litestream does).
func secondSignal(ctx context.Context) (<-chan struct{}, func()) {
	hard := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case <-sigs:
				n++
				if n == 2 {
					close(hard)
					return
				}
			}
		}
	}()
	return hard, func() { signal.Stop(sigs); close(done) }
}
