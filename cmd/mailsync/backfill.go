package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/sync/control"
)

// backfillPollInterval is how often a watched job is polled; tests shorten it.
var backfillPollInterval = 500 * time.Millisecond

func (m *Main) backfillCommand() *cobra.Command {
	var (
		flags        daemonFlags
		req          control.BackfillRequest
		since, until string
		detach       bool
	)
	cmd := &cobra.Command{
		Use:   "backfill --account ID --folder NAME [--since DATE] [--until DATE]",
		Short: "Import a folder's older mail into the CRM",
		Long: `Backfill asks the daemon to import mail that arrived before the account started
syncing. It runs in the daemon: this command starts the job and shows its
progress; Ctrl-C stops watching, not the job. Messages already delivered are
skipped, so a backfill may overlap the live sync or an earlier backfill.

DATE is YYYY-MM-DD (local time), an RFC 3339 time, or a number of days ago
such as 90d. --until includes the whole day it names.

--dry-run matches without delivering and prints how many messages each rule
would have taken or left out.`,
		Example: `  mailsync backfill --account sales --folder INBOX --since 2025-01-01
  mailsync backfill --account sales --folder sent --since 90d --dry-run
  mailsync backfill list
  mailsync backfill cancel bf-3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			now := time.Now()
			if req.Since, err = parseDate(since, now, false); err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("--since: %w", err)}
			}
			if req.Until, err = parseDate(until, now, true); err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("--until: %w", err)}
			}
			if !req.Since.IsZero() && !req.Until.IsZero() && !req.Until.After(req.Since) {
				return &exitError{code: exitUsage, err: errors.New("--until must be after --since")}
			}
			if req.Rate < 0 {
				return &exitError{code: exitUsage, err: errors.New("--rate must not be negative")}
			}
			return flags.withClient(func(c *control.Client) error {
				job, err := c.StartBackfill(cmd.Context(), req)
				if err != nil {
					return requestError("backfill", req.Account+"/"+req.Folder, err)
				}
				fmt.Fprintf(m.Stdout, "started %s: %s/%s%s\n", job.ID, req.Account, req.Folder, describeRange(req))
				if detach {
					fmt.Fprintf(m.Stdout, "  watch:  mailsync backfill watch %s\n  cancel: mailsync backfill cancel %s\n", job.ID, job.ID)
					return nil
				}
				return m.watchBackfill(cmd.Context(), c, job.ID)
			})
		},
	}
	flags.add(cmd)
	f := cmd.Flags()
	f.StringVarP(&req.Account, "account", "a", "", "account id (required)")
	f.StringVarP(&req.Folder, "folder", "f", "", "folder name or role (required)")
	f.StringVar(&since, "since", "", "oldest message date to import")
	f.StringVar(&until, "until", "", "newest message date to import (inclusive)")
	f.BoolVar(&req.DryRun, "dry-run", false, "match without delivering; print the decisions by reason")
	f.Float64Var(&req.Rate, "rate", 0, "messages per second (0: as fast as the CRM takes them)")
	f.BoolVar(&req.OldestFirst, "oldest-first", false, "import oldest mail first (default: newest first)")
	f.BoolVar(&detach, "detach", false, "start the job and return without watching it")
	cmd.MarkFlagRequired("account")
	cmd.MarkFlagRequired("folder")
	cmd.AddCommand(m.backfillListCommand(), m.backfillWatchCommand(), m.backfillCancelCommand())
	return cmd
}

// parseDate reads YYYY-MM-DD (local midnight; the next midnight if
// endOfDay, so an until date includes its day), RFC 3339, or "Nd" (N days
// before now). "" is the zero time.
func parseDate(s string, now time.Time, endOfDay bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return now.AddDate(0, 0, -days), nil
		}
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, now.Location()); err == nil {
		if endOfDay {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD, RFC 3339 or 90d)", s)
}

func describeRange(req control.BackfillRequest) string {
	var parts []string
	if !req.Since.IsZero() {
		parts = append(parts, "since "+req.Since.Format(time.DateOnly))
	}
	if !req.Until.IsZero() {
		parts = append(parts, "before "+req.Until.Format(time.DateOnly))
	}
	if req.DryRun {
		parts = append(parts, "dry run")
	}
	if req.Rate > 0 {
		parts = append(parts, fmt.Sprintf("%g msg/s", req.Rate))
	}
	if req.OldestFirst {
		parts = append(parts, "oldest first")
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// watchBackfill polls the job and draws a progress bar until the job ends
// or ctx does (Ctrl-C), which stops watching but not the job.
func (m *Main) watchBackfill(ctx context.Context, c *control.Client, id string) error {
	bar := newProgressBar(m.Stderr, id)
	ticker := time.NewTicker(backfillPollInterval)
	defer ticker.Stop()
	var rate rateMeter
	for {
		job, err := c.Backfill(ctx, id)
		if ctx.Err() != nil {
			bar.Exit()
			fmt.Fprintf(m.Stdout, "\nstopped watching; %s goes on in the daemon\n  watch again: mailsync backfill watch %s\n  cancel:      mailsync backfill cancel %s\n", id, id, id)
			return nil
		}
		if err != nil {
			bar.Exit()
			return requestError("backfill", id, err)
		}
		if job.Total > 0 && bar.GetMax() != job.Total {
			bar.ChangeMax(job.Total)
		}
		bar.Describe(id + " " + rate.observe(job.Done, time.Now()))
		bar.Set(job.Done)
		if isFinal(job.State) {
			if job.State == "done" {
				bar.Finish()
			} else {
				bar.Exit()
			}
			fmt.Fprintln(m.Stderr)
			return reportBackfill(m.Stdout, job)
		}
		select {
		case <-ctx.Done():
		case <-ticker.C:
		}
	}
}

func newProgressBar(w io.Writer, id string) *progressbar.ProgressBar {
	return progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(id),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		// The rate is in the description (rateMeter): the bar's own
		// shows "0 msg/hr" until the job has moved.
		progressbar.OptionSetPredictTime(true),
		// No spinner goroutine: the bar is redrawn by each poll, and
		// nothing runs behind this command's back.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
}

// rateMeter measures a job's rate from the polls this command made: the
// job may have run long before it was watched.
type rateMeter struct {
	first     time.Time
	firstDone int
}

// observe records a poll and says the rate: "412 msg/s", or "— msg/s"
// until the job has moved under watch.
func (r *rateMeter) observe(done int, now time.Time) string {
	if r.first.IsZero() {
		r.first, r.firstDone = now, done
	}
	el := now.Sub(r.first).Seconds()
	if done <= r.firstDone || el <= 0 {
		return "(— msg/s)"
	}
	rate := float64(done-r.firstDone) / el
	if rate < 10 {
		return fmt.Sprintf("(%.1f msg/s)", rate)
	}
	return fmt.Sprintf("(%.0f msg/s)", rate)
}

func isFinal(state string) bool {
	return state == "done" || state == "cancelled" || state == "failed"
}

// reportBackfill prints a finished job; a failed or cancelled job is an
// error (exit 1).
func reportBackfill(w io.Writer, job *control.BackfillJob) error {
	took := job.Updated.Sub(job.Created).Round(time.Second)
	switch job.State {
	case "failed":
		return &exitError{code: exitFailure, err: fmt.Errorf("backfill %s failed after %d of %d messages: %s", job.ID, job.Done, job.Total, job.Error)}
	case "cancelled":
		return &exitError{code: exitFailure, err: fmt.Errorf("backfill %s was cancelled after %d of %s", job.ID, job.Done, plural(job.Total, "message"))}
	}
	if job.Request.DryRun {
		fmt.Fprintf(w, "%s dry run done: %s examined in %s, nothing delivered\n\n", job.ID, plural(job.Done, "message"), took)
		renderMatched(w, job.Matched)
		return nil
	}
	fmt.Fprintf(w, "%s done: %s in %s: %d delivered, %d skipped (already delivered, excluded or not captured)\n",
		job.ID, plural(job.Done, "message"), took, job.Delivered, job.Skipped)
	return nil
}

// renderMatched prints a dry run's decisions, most frequent first.
func renderMatched(w io.Writer, matched map[string]int) {
	if len(matched) == 0 {
		fmt.Fprintln(w, "no decisions recorded")
		return
	}
	reasons := make([]string, 0, len(matched))
	total := 0
	for r, n := range matched {
		reasons = append(reasons, r)
		total += n
	}
	slices.SortFunc(reasons, func(a, b string) int {
		return cmp.Or(cmp.Compare(matched[b], matched[a]), cmp.Compare(a, b))
	})
	// Counts right-aligned, reasons left-aligned: tabwriter aligns a
	// whole table one way.
	width := max(len("MESSAGES"), len(strconv.Itoa(matched[reasons[0]])))
	fmt.Fprintf(w, "%*s  %6s  %s\n", width, "MESSAGES", "SHARE", "REASON")
	for _, r := range reasons {
		fmt.Fprintf(w, "%*d  %5.1f%%  %s\n", width, matched[r], 100*float64(matched[r])/float64(total), r)
	}
}

func (m *Main) backfillWatchCommand() *cobra.Command {
	var flags daemonFlags
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Show a backfill job's progress until it ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return flags.withClient(func(c *control.Client) error {
				return m.watchBackfill(cmd.Context(), c, args[0])
			})
		},
	}
	flags.add(cmd)
	return cmd
}

func (m *Main) backfillListCommand() *cobra.Command {
	var (
		flags  daemonFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List backfill jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return flags.withClient(func(c *control.Client) error {
				jobs, err := c.Backfills(cmd.Context())
				if err != nil {
					return fmt.Errorf("backfills: %w", err)
				}
				if asJSON {
					return writeJSON(m.Stdout, jobs)
				}
				renderBackfills(m.Stdout, jobs, time.Now())
				return nil
			})
		},
	}
	flags.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func renderBackfills(w io.Writer, jobs []control.BackfillJob, now time.Time) {
	if len(jobs) == 0 {
		fmt.Fprintln(w, "no backfill jobs")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACCOUNT\tFOLDER\tSTATE\tPROGRESS\tDELIVERED\tSKIPPED\tSTARTED\tERROR")
	for _, j := range jobs {
		state := j.State
		if j.Request.DryRun {
			state += " (dry run)"
		}
		progress := fmt.Sprintf("%d/%d", j.Done, j.Total)
		if j.Total > 0 {
			progress += fmt.Sprintf(" %d%%", 100*j.Done/j.Total)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", j.ID, j.Request.Account, j.Request.Folder, state,
			progress, j.Delivered, j.Skipped, ago(j.Created, now), clip(oneLine(j.Error), 60))
	}
	tw.Flush()
}

func (m *Main) backfillCancelCommand() *cobra.Command {
	var flags daemonFlags
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Stop a backfill job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return flags.withClient(func(c *control.Client) error {
				if err := c.CancelBackfill(cmd.Context(), args[0]); err != nil {
					return requestError("cancel", args[0], err)
				}
				fmt.Fprintf(m.Stdout, "cancelled %s; what it delivered stays delivered\n", args[0])
				return nil
			})
		},
	}
	flags.add(cmd)
	return cmd
}
