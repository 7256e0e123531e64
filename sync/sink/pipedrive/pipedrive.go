// Package pipedrive is a sink for Pipedrive (API v1). Each message becomes
// one activity of type "email", marked done, with the subject, a safe HTML
// note holding the text body and the marker "mailsync-key: KEY", linked
// to the matched person, organization and deal. That is what Pipedrive's
// own Smart BCC produces for a mail when the mailbox sync is not used
// (Pipedrive's mailbox API is read-only, so mailsync cannot create mail
// threads), and activities are what Pipedrive lists on the person, the
// organization and the deal.
//
// Idempotency after a lost state file: Pipedrive has no search over
// activity notes or subjects, and no field a client can set to an
// external id. What it allows is listing a user's activities filtered by
// type and by due date (GET /activities?type=email&start_date=D&end_date=D).
// mailsync sets the due date to the message's Date (UTC day), so before
// creating it lists that day's email activities of the token's user and
// looks for the marker. A message is therefore logged once as long as its
// activity keeps its marker, its due date and its type, and belongs to the
// token's user; an activity someone edited that way, or a message without a
// Date header delivered on a later day, can be logged again.
package pipedrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

// ErrClosed is returned by deliveries after Close.
var ErrClosed = errors.New("pipedrive sink is closed")

func init() {
	sink.Register("pipedrive", sink.Adapter{
		Parse: func(section map[string]any) (any, error) { return ParseSettings(section) },
		Open: func(_ context.Context, cfg any, deps sink.Deps) (sink.Sink, error) {
			return New(cfg.(Config), deps)
		},
		Shared: true,
	})
}

// Client is the Pipedrive sink. It is safe for concurrent use.
type Client struct {
	api    *api
	kv     sink.KV
	log    *slog.Logger
	closed atomic.Bool

	// deliverMu serialises the search-then-create of activities, so two
	// deliveries of one key never both miss the search. Pipedrive's rate
	// limit, not this lock, bounds throughput.
	deliverMu stdsync.Mutex

	unlinkMu      stdsync.Mutex
	pendingCursor string
}

var (
	_ sink.Sink         = (*Client)(nil)
	_ sink.Checker      = (*Client)(nil)
	_ sink.Unlinker     = (*Client)(nil)
	_ matcher.Directory = (*Client)(nil)
)

// New reads the token and builds the client; it makes no call.
func New(conf Config, deps sink.Deps) (*Client, error) {
	if err := conf.Validate(); err != nil {
		return nil, err
	}
	tok, err := conf.readToken()
	if err != nil {
		return nil, err
	}
	if deps.HTTP == nil {
		deps.HTTP = sink.NewHTTPClient(sink.DefaultHTTPTimeout)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.KV == nil {
		deps.KV = &sink.MemoryKV{}
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, fmt.Errorf("%s: metrics: %w", configPath, err)
	}
	hc := *deps.HTTP
	// A redirect would resend the token to wherever it points.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{api: newAPI(conf, tok, &hc, deps.Logger, m), kv: deps.KV, log: deps.Logger}, nil
}

// String names the sink for logs: host only.
func (c *Client) String() string { return "pipedrive:" + c.api.host }

// Close makes later deliveries fail. A second Close returns nil.
func (c *Client) Close() error {
	c.closed.Store(true)
	return nil
}

// stored is what the adapter's KV keeps per delivered key, so that a
// redelivery answers the first receipt without a call.
type stored struct {
	Activity int           `json:"a"`
	Linked   []sink.Record `json:"l,omitempty"`
}

func (s stored) receipt() sink.Receipt {
	return sink.Receipt{Activity: strconv.Itoa(s.Activity), Linked: s.Linked}
}

const (
	kvKey      = "k/" // k/<message key> -> stored
	kvActivity = "a/" // a/<activity id> -> message key (for Unlinked)
	kvRecents  = "recents_since"
)

func (c *Client) known(key string) (stored, bool, error) {
	b, err := c.kv.Get(kvKey + key)
	if err != nil || b == nil {
		return stored{}, false, err
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil || s.Activity == 0 {
		return stored{}, false, nil // unreadable: search Pipedrive instead
	}
	return s, true, nil
}

// remember records delivered keys in one KV transaction.
func (c *Client) remember(done map[string]stored) error {
	if len(done) == 0 {
		return nil
	}
	kv := make(map[string][]byte, 2*len(done))
	for key, s := range done {
		b, _ := json.Marshal(s)
		kv[kvKey+key] = b
		kv[kvActivity+strconv.Itoa(s.Activity)] = []byte(key)
	}
	return c.kv.PutMany(kv)
}

// dayOf is the due date an activity of m gets and is searched by.
func dayOf(m *sink.Message, now time.Time) time.Time {
	if m.Date.IsZero() {
		return now.UTC()
	}
	return m.Date.UTC()
}
