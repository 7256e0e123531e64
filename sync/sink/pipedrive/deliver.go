package pipedrive

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/mailbody"
)

// Limits of what an activity holds.
const (
	maxSubject = 255
	maxNote    = 64 << 10
	// dayPageLimit and maxDayPages bound one day's search: 20 pages of 500
	// activities. A user with more email activities on one day than that
	// gets no search beyond them (logged as a warning).
	dayPageLimit = 500
	maxDayPages  = 20
)

// markerRE finds the marker in a note. Keys hold no spaces or '<'.
var markerRE = regexp.MustCompile(`mailsync-key: ([^<\s]+)`)

func marker(key string) string { return "mailsync-key: " + key }

// Deliver logs each message as an email activity, searching that day's
// activities for its marker first (see the package comment). After a
// transient failure the rest of the batch is not attempted and gets the
// same error, so a struggling Pipedrive is not hammered.
func (c *Client) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	res := make([]sink.Result, len(ms))
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	days := map[string]map[string]int{} // day -> marker key -> activity id
	done := map[string]stored{}
	var stop error
	for i, m := range ms {
		switch {
		case m == nil || m.Key == "":
			res[i].Err = sink.Permanent(errors.New("pipedrive: message without a key"))
			continue
		case c.closed.Load():
			res[i].Err = ErrClosed
			continue
		case ctx.Err() != nil:
			res[i].Err = fmt.Errorf("pipedrive: %w", ctx.Err())
			continue
		case stop != nil:
			res[i].Err = stop
			continue
		}
		if s, ok := done[m.Key]; ok { // repeated within the batch
			res[i].Receipt = s.receipt()
			continue
		}
		s, err := c.deliverOne(ctx, m, days)
		if err != nil {
			res[i].Err = fmt.Errorf("message %s: %w", m.Key, err)
			if !sink.IsPermanent(err) {
				stop = fmt.Errorf("not sent after an earlier failure in the batch: %w", err)
			}
			continue
		}
		res[i].Receipt = s.receipt()
		if s.Activity != 0 {
			done[m.Key] = s
		}
	}
	if err := c.remember(done); err != nil {
		// Pipedrive has them; the day search finds them next time.
		c.log.Warn("cannot record delivered activities in the state file", "error", err)
	}
	return res
}

func (c *Client) deliverOne(ctx context.Context, m *sink.Message, days map[string]map[string]int) (stored, error) {
	if m.Event == sink.EventRetract {
		return stored{}, c.retract(ctx, m, days)
	}
	if m.Event != "" && m.Event != sink.EventMessage {
		// Flags, provenance and deletions have nothing to change on a
		// Pipedrive activity; they are acknowledged without a call.
		return stored{}, nil
	}
	if s, ok, err := c.known(m.Key); err != nil {
		return stored{}, err
	} else if ok {
		return s, nil
	}
	linked, act := buildActivity(m, c.api.now())
	found, err := c.searchDay(ctx, act.DueDate, days)
	if err != nil {
		return stored{}, err
	}
	if id, ok := found[m.Key]; ok {
		return stored{Activity: id, Linked: linked}, nil
	}
	var created struct {
		ID int `json:"id"`
	}
	if err := c.api.call(ctx, "POST", "activities", "/activities", nil, act, &created, nil); err != nil {
		return stored{}, err
	}
	if created.ID == 0 {
		return stored{}, errors.New("pipedrive activities: created activity has no id")
	}
	found[m.Key] = created.ID
	return stored{Activity: created.ID, Linked: linked}, nil
}

// searchDay returns the marked email activities of the token's user due
// on day, from Pipedrive once per batch and day.
func (c *Client) searchDay(ctx context.Context, day string, days map[string]map[string]int) (map[string]int, error) {
	if found, ok := days[day]; ok {
		return found, nil
	}
	found := map[string]int{}
	q := url.Values{"type": {"email"}, "start_date": {day}, "end_date": {day}, "limit": {strconv.Itoa(dayPageLimit)}}
	for page := 0; ; page++ {
		if page == maxDayPages {
			c.log.Warn("pipedrive day search stopped at its page limit; older activities of the day are not checked for duplicates",
				"day", day, "activities", page*dayPageLimit)
			break
		}
		q.Set("start", strconv.Itoa(page*dayPageLimit))
		var acts []struct {
			ID   int    `json:"id"`
			Note string `json:"note"`
		}
		var extra struct {
			Pagination struct {
				More bool `json:"more_items_in_collection"`
			} `json:"pagination"`
		}
		if err := c.api.call(ctx, "GET", "activities", "/activities", q, nil, &acts, &extra); err != nil {
			return nil, err
		}
		for _, a := range acts {
			if sm := markerRE.FindStringSubmatch(a.Note); sm != nil {
				found[sm[1]] = a.ID
			}
		}
		if !extra.Pagination.More || len(acts) == 0 {
			break
		}
	}
	days[day] = found
	return found, nil
}

// retract deletes the activity of the message a user marked private.
func (c *Client) retract(ctx context.Context, m *sink.Message, days map[string]map[string]int) error {
	key := strings.TrimSuffix(m.Key, ":retract")
	id := 0
	if s, ok, err := c.known(key); err != nil {
		return err
	} else if ok {
		id = s.Activity
	} else if !m.Date.IsZero() {
		found, err := c.searchDay(ctx, dayOf(m, c.api.now()).Format(time.DateOnly), days)
		if err != nil {
			return err
		}
		id = found[key]
	}
	if id == 0 {
		return nil // never logged, or already gone
	}
	err := c.api.call(ctx, "DELETE", "activities/delete", "/activities/"+strconv.Itoa(id), nil, nil, nil, nil)
	if st := statusOf(err); err != nil && st != 404 && st != 410 {
		return err
	}
	return c.kv.Delete(kvKey + key)
}

// activity is POST /activities' body.
type activity struct {
	Subject      string        `json:"subject"`
	Type         string        `json:"type"`
	Done         int           `json:"done"`
	DueDate      string        `json:"due_date"`
	DueTime      string        `json:"due_time,omitempty"`
	Note         string        `json:"note"`
	PersonID     int           `json:"person_id,omitempty"`
	OrgID        int           `json:"org_id,omitempty"`
	DealID       int           `json:"deal_id,omitempty"`
	Participants []participant `json:"participants,omitempty"`
}

type participant struct {
	PersonID    int  `json:"person_id"`
	PrimaryFlag bool `json:"primary_flag"`
}

// buildActivity maps a message to an activity and the records it links.
// Records whose ids are not Pipedrive's (a directory file's "P-7") are left
// out of the links.
func buildActivity(m *sink.Message, now time.Time) ([]sink.Record, activity) {
	day := dayOf(m, now)
	a := activity{
		Subject: mailbody.Clip(m.Subject, maxSubject),
		Type:    "email", Done: 1,
		DueDate: day.Format(time.DateOnly), DueTime: day.Format("15:04"),
		Note: note(m),
	}
	if a.Subject == "" {
		a.Subject = "(no subject)"
	}
	var linked []sink.Record
	if m.Match != nil {
		for _, r := range m.Match.Records {
			id, err := strconv.Atoi(r.ID)
			if err != nil || id <= 0 {
				continue
			}
			switch r.Kind {
			case sink.KindContact:
				if a.PersonID == 0 {
					a.PersonID = id
				}
				a.Participants = append(a.Participants, participant{PersonID: id, PrimaryFlag: len(a.Participants) == 0})
			case sink.KindCompany:
				if a.OrgID != 0 {
					continue
				}
				a.OrgID = id
			case sink.KindDeal:
				if a.DealID != 0 {
					continue
				}
				a.DealID = id
			default:
				continue
			}
			linked = append(linked, r.Ref())
		}
	}
	return linked, a
}

// note is the activity's HTML note: who wrote to whom, the text body
// (escaped; the message's own HTML may carry scripts and trackers) and
// the marker the day search looks for.
func note(m *sink.Message) string {
	var b strings.Builder
	line := func(label string, as []sink.Address) {
		if len(as) == 0 {
			return
		}
		parts := make([]string, len(as))
		for i, a := range as {
			parts[i] = a.Email
			if a.Name != "" {
				parts[i] = a.Name + " <" + a.Email + ">"
			}
		}
		b.WriteString("<b>" + label + ":</b> " + mailbody.SafeHTML(strings.Join(parts, ", ")) + "<br>")
	}
	line("From", m.From)
	line("To", m.To)
	line("Cc", m.Cc)
	b.WriteString("<br>")
	switch {
	case m.BodyOmitted || len(m.Body) == 0:
		b.WriteString("<i>(body not logged)</i>")
	default:
		p := mailbody.Extract(m.Body, maxNote)
		text := p.Text
		if text == "" && p.HTML != "" {
			text = "(HTML only message)"
		}
		b.WriteString(mailbody.SafeHTML(text))
		if m.Truncated {
			b.WriteString("<br><i>(cut at the size limit)</i>")
		}
	}
	b.WriteString(`<p style="color:#999">` + marker(m.Key) + "</p>")
	return b.String()
}
