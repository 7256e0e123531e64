package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// BackfillState is where a backfill job stands.
type BackfillState string

// Backfill states; done, cancelled and failed are final.
const (
	BackfillQueued    BackfillState = "queued"
	BackfillRunning   BackfillState = "running"
	BackfillDone      BackfillState = "done"
	BackfillCancelled BackfillState = "cancelled"
	BackfillFailed    BackfillState = "failed"
)

// BackfillJob is a resumable import of a folder's older mail.
type BackfillJob struct {
	ID          string        `json:"id"`
	Account     string        `json:"account"`
	Folder      string        `json:"folder"`
	Since       time.Time     `json:"since,omitzero"`
	Until       time.Time     `json:"until,omitzero"`
	DryRun      bool          `json:"dry_run,omitempty"`
	Rate        float64       `json:"rate,omitempty"` // messages per second, 0 = unlimited
	NewestFirst bool          `json:"newest_first,omitempty"`
	State       BackfillState `json:"state"`
	Total       int           `json:"total,omitempty"`
	Done        int           `json:"done,omitempty"`
	Delivered   int           `json:"delivered,omitempty"`
	Skipped     int           `json:"skipped,omitempty"`
	// Matched counts a dry run's decisions by reason ("skip: no_match"),
	// kept with the job so they can be read after it ended.
	Matched map[string]int `json:"matched,omitempty"`
	// Position is the next UID to process, so a restarted job resumes;
	// it is meaningful only under UIDValidity.
	Position    uint32    `json:"position,omitempty"`
	UIDValidity uint32    `json:"uidvalidity,omitempty"`
	Error       string    `json:"error,omitempty"`
	Created     time.Time `json:"created,omitzero"`
	Updated     time.Time `json:"updated,omitzero"`
}

func backfillErr(id, op string, err error) error {
	return fmt.Errorf("backfill %q: %s: %w", clip(id), op, err)
}

// NextBackfillID returns a new job id ("bf-1", "bf-2", ...) unique within
// this state file. It needs a write transaction.
func (t *Tx) NextBackfillID() (string, error) {
	b, err := t.top(bucketBackfill)
	if err != nil {
		return "", fmt.Errorf("backfill: next id: %w", err)
	}
	if b == nil || !t.tx.Writable() {
		return "", fmt.Errorf("backfill: next id: %w", invalid("needs a write transaction"))
	}
	n, err := b.NextSequence()
	if err != nil {
		return "", fmt.Errorf("backfill: next id: %w", err)
	}
	return "bf-" + strconv.FormatUint(n, 10), nil
}

// PutBackfill stores job under job.ID, replacing any.
func (t *Tx) PutBackfill(job BackfillJob) error {
	if err := checkName("backfill id", job.ID); err != nil {
		return backfillErr(job.ID, "put", err)
	}
	v, err := json.Marshal(job)
	if err != nil {
		return backfillErr(job.ID, "encode", err)
	}
	b, err := t.top(bucketBackfill)
	if err == nil {
		err = b.Put([]byte(job.ID), v)
	}
	if err != nil {
		return backfillErr(job.ID, "put", err)
	}
	return nil
}

// Backfill returns the job with id; ok is false if there is none.
func (t *Tx) Backfill(id string) (job BackfillJob, ok bool, err error) {
	if err := checkName("backfill id", id); err != nil {
		return BackfillJob{}, false, backfillErr(id, "get", err)
	}
	b, err := t.top(bucketBackfill)
	if err != nil {
		return BackfillJob{}, false, backfillErr(id, "get", err)
	}
	if b == nil {
		return BackfillJob{}, false, nil
	}
	v := b.Get([]byte(id))
	if v == nil {
		return BackfillJob{}, false, nil
	}
	if err := json.Unmarshal(v, &job); err != nil {
		return BackfillJob{}, false, backfillErr(id, "decode", err)
	}
	return job, true, nil
}

// DeleteBackfill removes the job with id; a missing job is not an error.
func (t *Tx) DeleteBackfill(id string) error {
	if err := checkName("backfill id", id); err != nil {
		return backfillErr(id, "delete", err)
	}
	b, err := t.top(bucketBackfill)
	if err == nil && b != nil {
		err = b.Delete([]byte(id))
	}
	if err != nil {
		return backfillErr(id, "delete", err)
	}
	return nil
}

// Backfills calls fn for every job, oldest Created first (ties by ID). Jobs
// are read first, so fn may write. fn's error stops and is returned as is.
func (t *Tx) Backfills(fn func(job BackfillJob) error) error {
	b, err := t.top(bucketBackfill)
	if err != nil {
		return fmt.Errorf("backfill: list: %w", err)
	}
	if b == nil {
		return nil
	}
	var jobs []BackfillJob
	err = b.ForEach(func(k, v []byte) error {
		var j BackfillJob
		if err := json.Unmarshal(v, &j); err != nil {
			return backfillErr(string(k), "decode", err)
		}
		jobs = append(jobs, j)
		return nil
	})
	if err != nil {
		return fmt.Errorf("backfill: list: %w", err)
	}
	sort.SliceStable(jobs, func(i, j int) bool {
		if !jobs[i].Created.Equal(jobs[j].Created) {
			return jobs[i].Created.Before(jobs[j].Created)
		}
		return jobs[i].ID < jobs[j].ID
	})
	for _, j := range jobs {
		if err := fn(j); err != nil {
			return err
		}
	}
	return nil
}
