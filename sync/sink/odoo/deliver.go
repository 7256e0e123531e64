package odoo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// target is one record a message is logged on.
type target struct {
	model string
	resID int
	rec   sink.Record
}

// loggedRow is a mail.message already in Odoo.
type loggedRow struct {
	ID        int  `json:"id"`
	MessageID text `json:"message_id"`
	Model     text `json:"model"`
	ResID     int  `json:"res_id"`
}

// Deliver implements sink.Sink. Messages become mail.message e-mails on the
// person (contact or lead) and the open opportunity the matcher linked, or
// on the company when no person is known. One search per batch finds what
// an earlier attempt (a retry, a crash, a lost state file) already logged,
// so a Message-ID is never posted twice on one record.
func (s *Sink) Deliver(ctx context.Context, ms []*Message) []sink.Result {
	res := make([]sink.Result, len(ms))
	if s.closed.Load() {
		for i := range res {
			res[i].Err = errClosed
		}
		return res
	}
	// A key is delivered once per batch (repeats get its result), and no
	// two batches search-then-post the same key at once.
	first := map[string]int{}
	var keys []string
	var posts []int
	for i, m := range ms {
		if m.Key == "" {
			res[i].Err = sink.Permanent(errors.New("message has no key"))
			continue
		}
		if _, dup := first[m.Key]; dup {
			continue
		}
		first[m.Key] = i
		keys = append(keys, m.Key)
		switch m.Event {
		case sink.EventMessage:
			posts = append(posts, i)
		case sink.EventRetract:
			res[i] = s.retract(ctx, m)
		default:
			// Flags, expunges and other copies change nothing Odoo shows.
		}
	}
	defer s.copyRepeats(ms, res, first)
	unlock := s.keys.lock(keys)
	defer unlock()
	if len(posts) == 0 {
		return res
	}
	if err := ctx.Err(); err != nil {
		for _, i := range posts {
			res[i].Err = err
		}
		return res
	}
	mids := make([]string, 0, len(posts))
	for _, i := range posts {
		mids = append(mids, messageID(ms[i]))
	}
	logged, err := s.findLogged(ctx, mids)
	if err != nil {
		for _, i := range posts {
			res[i].Err = s.classify(err)
		}
		return res
	}
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg stdsync.WaitGroup
	for _, i := range posts {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res[i] = s.post(ctx, ms[i], logged)
		}()
	}
	wg.Wait()
	var done []*Message
	var receipts []sink.Receipt
	for _, i := range posts {
		if res[i].Err == nil && res[i].Receipt.Activity != "" {
			done = append(done, ms[i])
			receipts = append(receipts, res[i].Receipt)
		}
	}
	if err := s.indexAdd(done, receipts); err != nil {
		// The index only feeds unlink detection; the messages are logged.
		s.log.Warn("cannot record logged messages for unlink detection", "err", err)
	}
	return res
}

var errClosed = errors.New("odoo sink is closed")

// copyRepeats gives repeated keys of a batch the result of their first.
func (s *Sink) copyRepeats(ms []*Message, res []sink.Result, first map[string]int) {
	for i, m := range ms {
		if j, ok := first[m.Key]; ok && j != i {
			res[i] = res[j]
		}
	}
}

// Message is sink.Message, named here for brevity.
type Message = sink.Message

// messageID is the Message-ID Odoo stores (with angle brackets). A message
// without one gets a stable made-up id from its key, so the search before
// posting finds it too.
func messageID(m *Message) string {
	id := strings.Trim(strings.TrimSpace(m.MessageID), "<>")
	if id == "" {
		id = strings.ReplaceAll(m.Key, ":", ".") + "@mailsync.invalid"
	}
	return "<" + id + ">"
}

// findLogged returns the mail.message ids already posted, by Message-ID,
// model and record.
func (s *Sink) findLogged(ctx context.Context, mids []string) (map[string]int, error) {
	var rows []loggedRow
	if err := s.rpc.execute(ctx, modelMessage, "search_read",
		[]any{[]any{[]any{"message_id", "in", mids}}},
		map[string]any{"fields": []string{"message_id", "model", "res_id"}}, &rows); err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[loggedKey(string(r.MessageID), string(r.Model), r.ResID)] = r.ID
	}
	return out, nil
}

func loggedKey(mid, model string, resID int) string {
	return mid + "\x00" + model + "\x00" + strconv.Itoa(resID)
}

// post logs one message on each of its targets that does not have it yet.
func (s *Sink) post(ctx context.Context, m *Message, logged map[string]int) sink.Result {
	var rcpt sink.Receipt
	created, err := s.createIntents(ctx, m)
	if err != nil {
		return sink.Result{Err: s.classify(fmt.Errorf("message %s: create: %w", m.Key, err))}
	}
	rcpt.Created = created
	targets := targetsOf(m, created)
	if len(targets) == 0 {
		// Matched nothing Odoo has (capture: all): there is no record to
		// log it on. Delivered, with no activity.
		return sink.Result{Receipt: rcpt}
	}
	mid := messageID(m)
	body, atts := renderBody(m, s.cfg.AttachmentsMaxBytes)
	var ids []string
	for _, t := range targets {
		if id, ok := logged[loggedKey(mid, t.model, t.resID)]; ok {
			ids = append(ids, strconv.Itoa(id))
			rcpt.Linked = append(rcpt.Linked, t.rec.Ref())
			continue
		}
		id, err := s.postOn(ctx, t, m, mid, body, atts)
		if err != nil {
			// Targets posted so far are found by the next attempt's search.
			return sink.Result{Err: s.classify(fmt.Errorf("message %s: post on %s %d: %w", m.Key, t.model, t.resID, err))}
		}
		ids = append(ids, strconv.Itoa(id))
		rcpt.Linked = append(rcpt.Linked, t.rec.Ref())
	}
	rcpt.Activity = strings.Join(ids, ",")
	return sink.Result{Receipt: rcpt}
}

// postOn runs message_post as a note of type email: it notifies nobody, and
// the context keeps the author from becoming a follower (who would be
// e-mailed every later discussion).
func (s *Sink) postOn(ctx context.Context, t target, m *Message, mid, body string, atts []attachment) (int, error) {
	kw := map[string]any{
		"body":          body,
		"subject":       m.Subject,
		"message_type":  "email",
		"subtype_xmlid": "mail.mt_note",
		"message_id":    mid,
		"context":       map[string]any{"mail_create_nosubscribe": true, "mail_post_autofollow": false},
	}
	if len(m.From) > 0 {
		kw["email_from"] = formatAddress(m.From[0])
	}
	if !m.Date.IsZero() {
		kw["date"] = m.Date.UTC().Format(time.DateTime)
	}
	if len(atts) > 0 {
		ids, err := s.uploadAttachments(ctx, atts)
		if err != nil {
			return 0, err
		}
		kw["attachment_ids"] = ids
	}
	var id int
	if err := s.rpc.execute(ctx, t.model, "message_post", []any{[]int{t.resID}}, kw, &id); err != nil {
		return 0, err
	}
	return id, nil
}

func (s *Sink) uploadAttachments(ctx context.Context, atts []attachment) ([]int, error) {
	ids := make([]int, 0, len(atts))
	for _, a := range atts {
		var id int
		if err := s.rpc.execute(ctx, "ir.attachment", "create", []any{map[string]any{
			"name": a.name, "datas": a.base64, "mimetype": a.mime, "res_model": "mail.compose.message", "res_id": 0,
		}}, nil, &id); err != nil {
			return nil, fmt.Errorf("attachment %q: %w", a.name, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// targetsOf picks the records to log on: every person (contact or lead)
// and deal the matcher linked, and the companies only when no person is
// linked (a company's chatter would otherwise repeat its people's).
func targetsOf(m *Message, created []sink.Record) []target {
	var recs []sink.Record
	if m.Match != nil {
		recs = append(recs, m.Match.Records...)
	}
	recs = append(recs, created...)
	var people, companies, out []target
	seen := map[string]bool{}
	for _, r := range recs {
		n, err := strconv.Atoi(r.ID)
		if err != nil || n <= 0 || seen[r.Key()] {
			continue // not an Odoo id (a directory file's record)
		}
		seen[r.Key()] = true
		t := target{model: modelOf(r.Kind), resID: n, rec: r}
		switch r.Kind {
		case sink.KindCompany:
			companies = append(companies, t)
		case sink.KindContact, sink.KindLead:
			people = append(people, t)
		default:
			out = append(out, t)
		}
	}
	if len(people) == 0 {
		people = companies
	}
	return append(people, out...)
}

// classify turns an Odoo failure into the sink's error contract: refused
// logins wait long (an admin has to fix the key; every message would be
// refused alike), Odoo's refusals of the data are permanent, the rest is
// transient.
func (s *Sink) classify(err error) error {
	if errors.Is(err, errAuth) {
		return &sink.RetryAfterError{After: 5 * time.Minute, Err: err}
	}
	return err
}

func formatAddress(a sink.Address) string {
	if a.Name == "" {
		return a.Email
	}
	return fmt.Sprintf("%q <%s>", a.Name, a.Email)
}
