package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// maxUnlinkPages bounds one poll of the recycling bin (100 a page).
// HubSpot keeps archived records 90 days, so the bin stays bounded too.
const maxUnlinkPages = 50

const ackedPrefix = "unlink-acked:"

// Unlinked implements sink.Unlinker: the keys of mailsync's engagements
// that a user deleted in HubSpot (they sit in the recycling bin,
// GET /crm/v3/objects/emails?archived=true), less those acknowledged. The
// error is transient.
func (c *Client) Unlinked(ctx context.Context) ([]string, error) {
	if err := c.open(); err != nil {
		return nil, err
	}
	var keys []string
	after := ""
	for range maxUnlinkPages {
		q := url.Values{"archived": {"true"}, "limit": {"100"}, "properties": {c.cfg.KeyProperty}}
		if after != "" {
			q.Set("after", after)
		}
		var p page
		if _, err := c.call(ctx, "list_archived_emails", http.MethodGet, "/crm/v3/objects/emails", q, nil, &p); err != nil {
			return nil, fmt.Errorf("list deleted emails: %w", err)
		}
		for _, o := range p.Results {
			k := o.prop(c.cfg.KeyProperty)
			if k == "" {
				continue // not logged by mailsync
			}
			acked, err := c.kv.Get(ackedPrefix + k)
			if err != nil {
				return nil, fmt.Errorf("read unlink acknowledgements: %w", err)
			}
			if acked == nil {
				keys = append(keys, k)
			}
		}
		if after = p.after(); after == "" {
			break
		}
	}
	return keys, nil
}

// AckUnlinked implements sink.Unlinker: the keys are not returned again.
func (c *Client) AckUnlinked(_ context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	kv := make(map[string][]byte, len(keys))
	for _, k := range keys {
		kv[ackedPrefix+k] = []byte(strconv.Itoa(1))
		c.known.drop(k)
	}
	if err := c.kv.PutMany(kv); err != nil {
		return fmt.Errorf("record %d unlink acknowledgements: %w", len(keys), err)
	}
	return nil
}
