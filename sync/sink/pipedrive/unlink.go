package pipedrive

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// recentsPages bounds one Unlinked call: 10 pages of 500 changes.
const (
	recentsLimit = 500
	recentsPages = 10
	// recentsLayout is Pipedrive's timestamp format ("YYYY-MM-DD HH:MM:SS", UTC).
	recentsLayout = "2006-01-02 15:04:05"
)

// Unlinked reports the messages whose activities were deleted in Pipedrive
// since the last acknowledged call, from GET /recents?items=activity,
// which lists deleted activities with active_flag false. The first call
// only sets the starting point: deletions before mailsync first asked are
// not reported.
func (c *Client) Unlinked(ctx context.Context) ([]string, error) {
	c.unlinkMu.Lock()
	defer c.unlinkMu.Unlock()
	b, err := c.kv.Get(kvRecents)
	if err != nil {
		return nil, err
	}
	since := string(b)
	if since == "" {
		start := c.api.now().UTC().Format(recentsLayout)
		return nil, c.kv.Put(kvRecents, []byte(start))
	}
	var keys []string
	next := since
	q := url.Values{"since_timestamp": {since}, "items": {"activity"}, "limit": {strconv.Itoa(recentsLimit)}}
	for page := range recentsPages {
		q.Set("start", strconv.Itoa(page*recentsLimit))
		var items []struct {
			Item string `json:"item"`
			ID   int    `json:"id"`
			Data struct {
				ActiveFlag *bool  `json:"active_flag"`
				Note       string `json:"note"`
				UpdateTime string `json:"update_time"`
			} `json:"data"`
		}
		var extra struct {
			Last       string `json:"last_timestamp_on_page"`
			Pagination struct {
				More bool `json:"more_items_in_collection"`
			} `json:"pagination"`
		}
		if err := c.api.call(ctx, "GET", "recents", "/recents", q, nil, &items, &extra); err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.Item != "activity" || it.Data.ActiveFlag == nil || *it.Data.ActiveFlag {
				continue
			}
			key := ""
			if sm := markerRE.FindStringSubmatch(it.Data.Note); sm != nil {
				key = sm[1]
			} else if b, err := c.kv.Get(kvActivity + strconv.Itoa(it.ID)); err == nil && b != nil {
				key = string(b)
			}
			if key != "" {
				keys = append(keys, key)
			}
		}
		if _, err := time.Parse(recentsLayout, extra.Last); err == nil && extra.Last > next {
			next = extra.Last
		}
		if !extra.Pagination.More || len(items) == 0 {
			break
		}
	}
	if len(keys) == 0 {
		// Nothing to acknowledge: move on now, or the same changes would be
		// read again on every poll.
		return nil, c.kv.Put(kvRecents, []byte(next))
	}
	c.pendingCursor = next
	return keys, nil
}

// AckUnlinked moves the starting point past what Unlinked returned.
func (c *Client) AckUnlinked(ctx context.Context, keys []string) error {
	c.unlinkMu.Lock()
	defer c.unlinkMu.Unlock()
	if c.pendingCursor == "" {
		return nil
	}
	for _, k := range keys {
		_ = c.kv.Delete(kvKey + k)
	}
	err := c.kv.Put(kvRecents, []byte(c.pendingCursor))
	c.pendingCursor = ""
	return err
}
