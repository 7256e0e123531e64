package worker_test

import (
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
	"github.com/mailsync/mailsync/sync/worker"
)

func backfillJob(t *testing.T, r *rig, id string) store.BackfillJob {
	t.Helper()
	jobs, err := r.sup.Backfills()
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.ID == id {
			return j.BackfillJob
		}
	}
	t.Fatalf("no backfill job %s", id)
	return store.BackfillJob{}
}

// TestBackfillWhileLiveAndResume: a 5,000-message Archive is backfilled
// while INBOX is live; live mail still arrives during the backfill; the
// daemon is stopped mid-backfill and started again: the job resumes where
// it was, and every message is delivered exactly once.
func TestBackfillWhileLiveAndResume(t *testing.T) {
	const total = 5000
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "Archive", generate(61, total, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		extra: "sync: {retry_min: 50ms, retry_max: 1s, batch_size: 200}\n"})
	r.start()
	waitFor(t, 10*time.Second, "INBOX idle", func() bool {
		s := r.sup.Status()
		return len(s) == 1 && len(s[0].Folders) == 1 && s[0].Folders[0].State == worker.StateIdle
	})
	job, err := r.sup.StartBackfill(worker.BackfillRequest{Account: "alice", Folder: "Archive", Rate: 1000}) // ~5s: room for the live message
	if err != nil {
		t.Fatal(err)
	}
	// Live mail during the backfill.
	g := mailgen.New(62, mailgen.Options{AvgSize: 3000})
	live := g.Generate(mailgen.Spec{})
	waitFor(t, 30*time.Second, "backfill under way", func() bool { return backfillJob(t, r, job.ID).Done >= 500 })
	srv.Append(t, dovecottest.DefaultUser, "INBOX", live.Raw)
	waitFor(t, 15*time.Second, "live delivery during the backfill", func() bool {
		found := false
		readJSONL(t, r.dir+"/messages.jsonl", func(l jsonlLine) { found = found || l.MessageID == live.ID })
		return found
	})
	if j := backfillJob(t, r, job.ID); j.State != store.BackfillRunning || j.Done >= total {
		t.Fatalf("backfill already %s with %d done; the live message must arrive during it", j.State, j.Done)
	}

	// Stop mid-backfill; the job stays "running" in the state file.
	waitFor(t, 30*time.Second, "more progress", func() bool { return backfillJob(t, r, job.ID).Done >= 1500 })
	r.stop()
	r.start()
	waitFor(t, 120*time.Second, "backfill done", func() bool { return backfillJob(t, r, job.ID).State == store.BackfillDone })
	j := backfillJob(t, r, job.ID)
	r.stop()

	keys := r.jsonlKeys()
	if got := len(keys); got != total+1 {
		t.Fatalf("sink holds %d keys, want %d (archive + the live message)", got, total+1)
	}
	for k, n := range keys {
		if n != 1 {
			t.Fatalf("key %s delivered %d times", k, n)
		}
	}
	if j.Done != total || j.Total != total {
		t.Fatalf("job done %d of %d, want %d of %d", j.Done, j.Total, total, total)
	}
	// Newest first, batch by batch: the first archive line comes from the
	// newest batch (UIDs 4801-5000), the last from the oldest (1-200).
	var first, last uint32
	readJSONL(t, r.dir+"/messages.jsonl", func(l jsonlLine) {
		if l.Provenance[0].Folder == "Archive" {
			if first == 0 {
				first = l.Provenance[0].UID
			}
			last = l.Provenance[0].UID
		}
	})
	if first <= total-200 || last > 200 {
		t.Errorf("first backfilled uid %d, last %d: want the newest batch first and the oldest last", first, last)
	}
}

// TestBackfillDryRunDeliversNothing: a dry run counts and matches but the
// sink stays empty.
func TestBackfillDryRunDeliversNothing(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "Archive", generate(71, 50, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	job, err := r.sup.StartBackfill(worker.BackfillRequest{Account: "alice", Folder: "Archive", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "dry run done", func() bool { return backfillJob(t, r, job.ID).State == store.BackfillDone })
	jobs, _ := r.sup.Backfills()
	r.stop()
	if got := len(r.jsonlKeys()); got != 0 {
		t.Fatalf("dry run delivered %d messages", got)
	}
	if j := jobs[0]; j.Done != 50 {
		t.Fatalf("dry run processed %d of 50", j.Done)
	}
	// The decisions by reason outlive the job: the CLI reads them after
	// it is done (issue 14, item 6).
	n := 0
	for _, c := range jobs[0].Matched {
		n += c
	}
	if n != 50 {
		t.Fatalf("finished dry run reports %d decisions by reason (%v), want 50", n, jobs[0].Matched)
	}
}
