package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/control"
)

func fastPolls(t *testing.T) {
	old := backfillPollInterval
	backfillPollInterval = 5 * time.Millisecond
	t.Cleanup(func() { backfillPollInterval = old })
}

func TestBackfillWatchesUntilDone(t *testing.T) {
	fastPolls(t)
	d := &fakeDaemon{job: control.BackfillJob{Total: 10, Skipped: 2, Created: statusNow}, step: 3}
	sock := serveFake(t, d)
	out, errOut, code := runCLI(t, context.Background(), "backfill", "--socket", sock, "--account", "sales", "--folder", "INBOX",
		"--since", "2025-01-01", "--until", "2025-01-31", "--rate", "5", "--oldest-first")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	// --until names a day and includes it.
	want := "backfill sales INBOX since=2025-01-01 until=2025-02-01 dry=false rate=5 oldest=true"
	if calls := d.called(); !slices.Contains(calls, want) {
		t.Errorf("daemon calls %q, want %q", calls, want)
	}
	for _, w := range []string{
		"started bf-7: sales/INBOX (since 2025-01-01, before 2025-02-01, 5 msg/s, oldest first)",
		"bf-7 done: 10 messages in 1m30s: 8 delivered, 2 skipped",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	// The progress bar shows the count and a rate.
	if !strings.Contains(errOut, "10/10") || !strings.Contains(errOut, "msg/s") {
		t.Errorf("progress bar output lacks count or rate:\n%q", errOut)
	}
	// Until a rate is known the bar says so, rather than "0 msg/hr"
	// (issue 14, item 10).
	if strings.Contains(errOut, "0 msg/hr") || strings.Contains(errOut, " 0 msg/s") || !strings.Contains(errOut, "— msg/s") {
		t.Errorf("progress bar starts with a made-up rate:\n%q", errOut)
	}
}

func TestBackfillDryRunTable(t *testing.T) {
	fastPolls(t)
	d := &fakeDaemon{job: control.BackfillJob{Total: 10, Created: statusNow,
		Matched: map[string]int{"matched:contact": 6, "excluded:internal": 3, "skipped:no-match": 1}}, step: 10}
	sock := serveFake(t, d)
	out, errOut, code := runCLI(t, context.Background(), "backfill", "--socket", sock, "-a", "sales", "-f", "sent", "--dry-run", "--since", "90d")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	since := time.Now().AddDate(0, 0, -90).Format(time.DateOnly)
	if calls := d.called(); !slices.ContainsFunc(calls, func(c string) bool {
		return strings.HasPrefix(c, "backfill sales sent since="+since) && strings.Contains(c, "dry=true")
	}) {
		t.Errorf("daemon calls %q, want a dry run since %s", calls, since)
	}
	for _, w := range []string{
		"bf-7 dry run done: 10 messages examined in 1m30s, nothing delivered",
		"MESSAGES   SHARE  REASON",
		"       6   60.0%  matched:contact",
		"       3   30.0%  excluded:internal",
		"       1   10.0%  skipped:no-match",
	} {
		if !containsLine(out, w) {
			t.Errorf("stdout lacks line %q:\n%s", w, out)
		}
	}
}

func TestBackfillCtrlCStopsWatchingOnly(t *testing.T) {
	fastPolls(t)
	d := &fakeDaemon{job: control.BackfillJob{Total: 100, Created: statusNow}, step: 0} // never finishes
	sock := serveFake(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := time.AfterFunc(200*time.Millisecond, cancel) // the operator's Ctrl-C
	defer stop.Stop()
	out, errOut, code := runCLI(t, ctx, "backfill", "--socket", sock, "-a", "sales", "-f", "INBOX")
	if code != 0 {
		t.Fatalf("exit %d after Ctrl-C, stderr %s", code, errOut)
	}
	for _, w := range []string{"stopped watching; bf-7 goes on in the daemon", "watch again: mailsync backfill watch bf-7", "cancel:      mailsync backfill cancel bf-7"} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	if calls := d.called(); slices.Contains(calls, "cancel bf-7") {
		t.Errorf("Ctrl-C cancelled the job: %q", calls)
	}
}

func TestBackfillDetachListCancel(t *testing.T) {
	d := &fakeDaemon{job: control.BackfillJob{Total: 50, Done: 20, Delivered: 18, Skipped: 2, Created: time.Now().Add(-time.Hour)}}
	sock := serveFake(t, d)
	out, _, code := runCLI(t, context.Background(), "backfill", "--socket", sock, "-a", "sales", "-f", "INBOX", "--detach")
	if code != 0 || !strings.Contains(out, "watch:  mailsync backfill watch bf-7") {
		t.Fatalf("--detach: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, context.Background(), "backfill", "list", "--socket", sock)
	if code != 0 || !strings.Contains(out, "bf-7") || !strings.Contains(out, "20/50 40%") || !strings.Contains(out, "1h ago") {
		t.Errorf("backfill list: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, context.Background(), "backfill", "cancel", "bf-7", "--socket", sock)
	if code != 0 || !strings.Contains(out, "cancelled bf-7") {
		t.Errorf("backfill cancel: exit %d\n%s", code, out)
	}
	_, errOut, code := runCLI(t, context.Background(), "backfill", "cancel", "bf-99", "--socket", sock)
	if code != 1 || !strings.Contains(errOut, `unknown backfill job "bf-99"`) {
		t.Errorf("cancel of an unknown job: exit %d, stderr %q", code, errOut)
	}
}

func TestBackfillWatchFailedJob(t *testing.T) {
	fastPolls(t)
	d := &fakeDaemon{job: control.BackfillJob{ID: "bf-7", State: "failed", Total: 30, Done: 12, Error: "uidvalidity changed", Created: statusNow}}
	sock := serveFake(t, d)
	_, errOut, code := runCLI(t, context.Background(), "backfill", "watch", "bf-7", "--socket", sock)
	if code != 1 || !strings.Contains(errOut, "backfill bf-7 failed after 12 of 30 messages: uidvalidity changed") {
		t.Errorf("watch of a failed job: exit %d, stderr %q", code, errOut)
	}
}

func TestBackfillBadFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--since", "yesterday"}, `--since: "yesterday" is not a date`},
		{[]string{"--since", "2025-02-01", "--until", "2025-01-01"}, "--until must be after --since"},
		{[]string{"--rate", "-1"}, "--rate must not be negative"},
	}
	for _, tt := range tests {
		args := append([]string{"backfill", "--socket", "/nonexistent.sock", "-a", "sales", "-f", "INBOX"}, tt.args...)
		_, errOut, code := runCLI(t, context.Background(), args...)
		if code != 2 || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, errOut, tt.wantErr)
		}
	}
}

func TestParseDate(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		in        string
		endOfDay  bool
		want      time.Time
		wantError bool
	}{
		{"", false, time.Time{}, false},
		{"2025-01-31", false, time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC), false},
		{"2025-01-31", true, time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), false},
		{"2025-01-31T10:00:00+01:00", true, time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC), false},
		{"30d", false, now.AddDate(0, 0, -30), false},
		{"-3d", false, time.Time{}, true},
		{"31/01/2025", false, time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseDate(tt.in, now, tt.endOfDay)
		if (err != nil) != tt.wantError || !got.Equal(tt.want) {
			t.Errorf("parseDate(%q, %v) = %v, %v; want %v (error %v)", tt.in, tt.endOfDay, got, err, tt.want, tt.wantError)
		}
	}
}

// FuzzParseDate checks that any --since/--until text either fails cleanly
// or parses the same with and without endOfDay, except that a bare date
// as an end moves exactly one day later.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"", "2025-01-31", "90d", "0d", "2025-01-31T10:00:00Z", "2025-02-30", "d", "-1d"} {
		f.Add(s, false)
	}
	now := time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string, _ bool) {
		start, err1 := parseDate(s, now, false)
		end, err2 := parseDate(s, now, true)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("parseDate(%q): errors differ: %v vs %v", s, err1, err2)
		}
		if err1 != nil {
			if !strings.Contains(err1.Error(), "is not a date") {
				t.Fatalf("parseDate(%q) error %q does not say what is wrong", s, err1)
			}
			return
		}
		if _, err := time.Parse(time.DateOnly, s); err == nil {
			if !end.Equal(start.AddDate(0, 0, 1)) {
				t.Fatalf("parseDate(%q): end %v is not one day after start %v", s, end, start)
			}
		} else if !end.Equal(start) {
			t.Fatalf("parseDate(%q): end %v differs from start %v", s, end, start)
		}
	})
}
