package salesforce

import (
	"context"
	"net/url"
	"time"
)

const kvDeletedSince = "deleted_since" // RFC 3339: where the next poll starts

// deleteLogWindow is how far back Salesforce's delete log answers
// GET /sobjects/{type}/deleted; a start before that is refused.
const deleteLogWindow = 15 * 24 * time.Hour

// Unlinked reports the messages whose EmailMessages a user deleted in
// Salesforce since the last acknowledged call, from the replication
// resource GET /sobjects/EmailMessage/deleted. Salesforce ignores seconds,
// so a poll covers whole minutes and a deletion shows within about one.
// The first call only sets the starting point: deletions before mailsync
// first asked are not reported. A daemon stopped for longer than the
// delete log reaches back resumes 15 days back and says so.
func (c *Client) Unlinked(ctx context.Context) ([]string, error) {
	c.unlinkMu.Lock()
	defer c.unlinkMu.Unlock()
	now := c.api.now().UTC().Truncate(time.Minute)
	b, err := c.kv.Get(kvDeletedSince)
	if err != nil {
		return nil, err
	}
	since, perr := time.Parse(time.RFC3339, string(b))
	if b == nil || perr != nil {
		return nil, c.kv.Put(kvDeletedSince, []byte(now.Format(time.RFC3339)))
	}
	if oldest := now.Add(-deleteLogWindow + time.Hour); since.Before(oldest) {
		c.log.Warn("salesforce lists deletions of the last 15 days only; EmailMessages deleted before are not unlinked",
			"since", since.Format(time.RFC3339), "resuming_at", oldest.Format(time.RFC3339))
		since = oldest
	}
	if !now.After(since) {
		return nil, nil
	}
	var res struct {
		DeletedRecords []struct {
			ID string `json:"id"`
		} `json:"deletedRecords"`
		LatestDateCovered string `json:"latestDateCovered"`
	}
	q := url.Values{"start": {since.Format(time.RFC3339)}, "end": {now.Format(time.RFC3339)}}
	if err := c.api.call(ctx, "GET", "deleted", "/sobjects/EmailMessage/deleted", q, nil, &res); err != nil {
		return nil, err
	}
	// The next poll starts at the minute covered last, so the rest of that
	// minute is read again; acknowledged EmailMessages are forgotten, so a
	// deletion is reported once.
	next := now
	if t, ok := parseDate(res.LatestDateCovered); ok && t.After(since) && t.Before(now) {
		next = t
	}
	var keys, ids []string
	for _, d := range res.DeletedRecords {
		k, err := c.kv.Get(kvEmail + d.ID)
		if err != nil {
			return nil, err
		}
		if k != nil { // else not logged by mailsync
			keys, ids = append(keys, string(k)), append(ids, d.ID)
		}
	}
	if len(keys) == 0 {
		return nil, c.kv.Put(kvDeletedSince, []byte(next.Format(time.RFC3339)))
	}
	c.pendingCursor, c.pendingIDs = next.Format(time.RFC3339), ids
	return keys, nil
}

// AckUnlinked moves the starting point past what Unlinked returned and
// forgets the unlinked messages' EmailMessages.
func (c *Client) AckUnlinked(_ context.Context, keys []string) error {
	c.unlinkMu.Lock()
	defer c.unlinkMu.Unlock()
	if c.pendingCursor == "" {
		return nil
	}
	for _, k := range keys {
		_ = c.kv.Delete(kvKey + k)
	}
	for _, id := range c.pendingIDs {
		_ = c.kv.Delete(kvEmail + id)
	}
	err := c.kv.Put(kvDeletedSince, []byte(c.pendingCursor))
	c.pendingCursor, c.pendingIDs = "", nil
	return err
}

// parseDate reads a Salesforce date-time ("2026-12-04T18:31:00.000+0000")
// or an RFC 3339 one.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
