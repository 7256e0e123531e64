package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
)

func (m *Main) runCommand() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the sync daemon",
		Long: `Run connects to every configured account, catches up on what arrived since the
last run, then holds IDLE and hands every new message to the sink.

SIGTERM or SIGINT stops it gracefully (deliveries in flight may finish within
sync.shutdown_grace); a second signal stops it at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			log := newLogger(cfg.Log, os.Stderr)
			d, err := openDaemon(cfg, log, daemonOptions{cfgPath: cfgPath})
			if err != nil {
				return err
			}
			defer d.close()
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
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "/etc/mailsync/config.yaml", "configuration file")
	return cmd
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
