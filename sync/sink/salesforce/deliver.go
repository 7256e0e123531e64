package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/mailbody"
)

// collectionMax is the sObject Collections limit: 200 records a call.
const collectionMax = 200

const (
	kvKey   = "k/" // k/<message key> -> stored
	kvEmail = "e/" // e/<EmailMessage id> -> message key (for Unlinked)
)

type stored struct {
	ID     string        `json:"id"`
	Linked []sink.Record `json:"l,omitempty"`
}

// identifier is what MessageIdentifier holds for m: the Message-ID, or,
// for mail without one, an id made of the key (unique per message).
func identifier(m *sink.Message) string {
	if id := strings.Trim(m.MessageID, "<> "); id != "" {
		return "<" + id + ">"
	}
	return "<" + m.Key + "@mailsync.invalid>"
}

// Deliver creates one EmailMessage per new message and its relations,
// 200 records a call. Messages whose MessageIdentifier is already in
// Salesforce get that record's id as their receipt.
func (c *Client) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	res := make([]sink.Result, len(ms))
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	type todo struct {
		idx []int // positions in ms with this key
		m   *sink.Message
	}
	var pending []*todo
	byKey := map[string]*todo{}
	for i, m := range ms {
		switch {
		case m == nil || m.Key == "":
			res[i].Err = sink.Permanent(errors.New("salesforce: message without a key"))
			continue
		case c.closed.Load():
			res[i].Err = ErrClosed
			continue
		case ctx.Err() != nil:
			res[i].Err = fmt.Errorf("salesforce: %w", ctx.Err())
			continue
		case m.Event != "" && m.Event != sink.EventMessage:
			continue // nothing to change on an EmailMessage for these events
		}
		if t, ok := byKey[m.Key]; ok {
			t.idx = append(t.idx, i)
			continue
		}
		if b, err := c.kv.Get(kvKey + m.Key); err == nil && b != nil {
			var s stored
			if json.Unmarshal(b, &s) == nil && s.ID != "" {
				res[i].Receipt = sink.Receipt{Activity: s.ID, Linked: s.Linked}
				continue
			}
		}
		t := &todo{idx: []int{i}, m: m}
		byKey[m.Key] = t
		pending = append(pending, t)
	}
	fail := func(t *todo, err error) {
		for _, i := range t.idx {
			res[i].Err = fmt.Errorf("message %s: %w", t.m.Key, err)
		}
	}
	done := map[string][]byte{}
	for start := 0; start < len(pending); start += collectionMax {
		batch := pending[start:min(len(pending), start+collectionMax)]
		msgs := make([]*sink.Message, len(batch))
		for i, t := range batch {
			msgs[i] = t.m
		}
		ids, linked, errs := c.createBatch(ctx, msgs)
		for i, t := range batch {
			if errs[i] != nil {
				fail(t, errs[i])
				continue
			}
			s := stored{ID: ids[i], Linked: linked[i]}
			b, _ := json.Marshal(s)
			done[kvKey+t.m.Key] = b
			done[kvEmail+s.ID] = []byte(t.m.Key)
			for _, j := range t.idx {
				res[j].Receipt = sink.Receipt{Activity: s.ID, Linked: s.Linked}
			}
		}
	}
	if len(done) > 0 {
		if err := c.kv.PutMany(done); err != nil {
			c.log.Warn("cannot record delivered email messages in the state file", "error", err)
		}
	}
	for i := range ms {
		if ms[i] != nil && res[i].Err == nil && res[i].Receipt.Activity == "" && (ms[i].Event == "" || ms[i].Event == sink.EventMessage) && ms[i].Key != "" {
			res[i].Err = errors.New("salesforce: no result") // cannot happen; never report success without an id
		}
	}
	return res
}

// createBatch finds existing EmailMessages by MessageIdentifier, creates
// the others and their relations, and returns an id or an error per message.
func (c *Client) createBatch(ctx context.Context, ms []*sink.Message) ([]string, [][]sink.Record, []error) {
	ids := make([]string, len(ms))
	linked := make([][]sink.Record, len(ms))
	errs := make([]error, len(ms))
	all := func(err error) ([]string, [][]sink.Record, []error) {
		for i := range errs {
			errs[i] = err
		}
		return ids, linked, errs
	}
	idents := make([]string, len(ms))
	for i, m := range ms {
		idents[i] = identifier(m)
	}
	existing := map[string]string{}
	for _, part := range chunks(idents, inChunk) {
		var found []struct{ ID, MessageIdentifier string }
		if err := c.query(ctx, "SELECT Id, MessageIdentifier FROM EmailMessage WHERE MessageIdentifier IN "+soqlList(part), &found); err != nil {
			return all(err)
		}
		for _, f := range found {
			existing[f.MessageIdentifier] = f.ID
		}
	}
	var records []map[string]any
	var newIdx, oldIdx []int
	for i, m := range ms {
		rel, recs := relatedTo(m)
		linked[i] = recs
		if id, ok := existing[idents[i]]; ok {
			ids[i] = id
			oldIdx = append(oldIdx, i)
			continue
		}
		records = append(records, emailMessage(m, idents[i], rel))
		newIdx = append(newIdx, i)
	}
	var relations []map[string]any
	var relOwner []int // relations[j] belongs to ms[relOwner[j]]
	if len(oldIdx) > 0 {
		// An EmailMessage that exists may lack relations: the daemon was
		// killed between the two calls, or the relations' call failed.
		missing, err := c.missingRelations(ctx, ms, ids, oldIdx)
		if err != nil {
			for _, i := range oldIdx {
				errs[i] = err
			}
		}
		for _, r := range missing {
			relations = append(relations, r.rec)
			relOwner = append(relOwner, r.owner)
		}
	}
	if len(records) > 0 {
		saved, err := c.collection(ctx, records)
		if err != nil {
			for _, i := range newIdx {
				errs[i] = err
			}
			newIdx = nil
		}
		for j, i := range newIdx {
			if !saved[j].Success {
				errs[i] = sink.Permanent(saveError("EmailMessage", saved[j]))
				continue
			}
			ids[i] = saved[j].ID
			for _, r := range relationsOf(ms[i], saved[j].ID) {
				relations = append(relations, r)
				relOwner = append(relOwner, i)
			}
		}
	}
	for start := 0; start < len(relations); start += collectionMax {
		end := min(len(relations), start+collectionMax)
		rs, err := c.collection(ctx, relations[start:end])
		if err != nil {
			// The EmailMessages exist and are found by identifier on the
			// retry, which creates the relations still missing.
			for _, i := range relOwner[start:end] {
				errs[i] = fmt.Errorf("relating the email message to its people: %w", err)
			}
			continue
		}
		for _, r := range rs {
			if !r.Success {
				c.log.Warn("salesforce refused an EmailMessageRelation", "error", saveError("EmailMessageRelation", r))
			}
		}
	}
	return ids, linked, errs
}

type ownedRelation struct {
	owner int
	rec   map[string]any
}

// missingRelations returns the relations the messages at idx (whose
// EmailMessages exist, with ids[i]) should have and do not.
func (c *Client) missingRelations(ctx context.Context, ms []*sink.Message, ids []string, idx []int) ([]ownedRelation, error) {
	var emIDs []string
	for _, i := range idx {
		if ms[i].Match != nil {
			emIDs = append(emIDs, ids[i])
		}
	}
	have := map[[2]string]bool{}
	for _, part := range chunks(emIDs, inChunk) {
		var found []struct{ EmailMessageID, RelationID string }
		if err := c.query(ctx, "SELECT EmailMessageId, RelationId FROM EmailMessageRelation WHERE EmailMessageId IN "+soqlList(part), &found); err != nil {
			return nil, err
		}
		for _, f := range found {
			have[[2]string{f.EmailMessageID, f.RelationID}] = true
		}
	}
	var out []ownedRelation
	for _, i := range idx {
		for _, r := range relationsOf(ms[i], ids[i]) {
			if !have[[2]string{ids[i], r["RelationId"].(string)}] {
				out = append(out, ownedRelation{owner: i, rec: r})
			}
		}
	}
	return out, nil
}

type saveResult struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
	Errors  []struct {
		StatusCode string   `json:"statusCode"`
		Message    string   `json:"message"`
		Fields     []string `json:"fields"`
	} `json:"errors"`
}

func saveError(obj string, r saveResult) error {
	if len(r.Errors) == 0 {
		return fmt.Errorf("salesforce refused the %s", obj)
	}
	e := r.Errors[0]
	return fmt.Errorf("salesforce refused the %s: %s: %s", obj, e.StatusCode, e.Message)
}

// collection creates records through POST /composite/sobjects with
// allOrNone false, so one refused record does not fail the others.
func (c *Client) collection(ctx context.Context, records []map[string]any) ([]saveResult, error) {
	var out []saveResult
	body := map[string]any{"allOrNone": false, "records": records}
	if err := c.api.call(ctx, "POST", "composite/sobjects", "/composite/sobjects", nil, body, &out); err != nil {
		return nil, err
	}
	if len(out) != len(records) {
		return nil, fmt.Errorf("salesforce composite/sobjects: %d results for %d records", len(out), len(records))
	}
	return out, nil
}

// relatedTo picks RelatedToId: the first open opportunity, else the
// account. Contacts and leads are linked through relations instead.
func relatedTo(m *sink.Message) (string, []sink.Record) {
	if m.Match == nil {
		return "", nil
	}
	var deal, company string
	var recs []sink.Record
	for _, r := range m.Match.Records {
		switch r.Kind {
		case sink.KindDeal:
			if deal == "" {
				deal = r.ID
				recs = append(recs, r.Ref())
			}
		case sink.KindCompany:
			if company == "" {
				company = r.ID
				recs = append(recs, r.Ref())
			}
		case sink.KindContact, sink.KindLead:
			recs = append(recs, r.Ref())
		}
	}
	if deal != "" {
		return deal, recs
	}
	return company, recs
}

func emailMessage(m *sink.Message, ident, related string) map[string]any {
	text, html := bodies(m)
	status := "3" // Sent
	if m.Direction == sink.Inbound {
		status = "1" // Read
	}
	subject := m.Subject
	if subject == "" {
		subject = "(no subject)"
	}
	rec := map[string]any{
		"attributes":        map[string]any{"type": "EmailMessage"},
		"MessageIdentifier": ident,
		"Subject":           mailbody.Clip(subject, 3000),
		"Incoming":          m.Direction == sink.Inbound,
		"Status":            status,
		"MessageDate":       date(m).UTC().Format("2006-01-02T15:04:05.000Z"),
		"TextBody":          text,
		"HtmlBody":          html,
	}
	if len(m.From) > 0 {
		rec["FromAddress"] = m.From[0].Email
		rec["FromName"] = mailbody.Clip(m.From[0].Name, 1000)
	}
	if s := addrs(m.To); s != "" {
		rec["ToAddress"] = s
	}
	if s := addrs(m.Cc); s != "" {
		rec["CcAddress"] = s
	}
	if related != "" {
		rec["RelatedToId"] = related
	}
	return rec
}

func date(m *sink.Message) time.Time {
	if m.Date.IsZero() {
		return time.Now()
	}
	return m.Date
}

func addrs(as []sink.Address) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.Email
	}
	return mailbody.Clip(strings.Join(s, "; "), 4000)
}

// relationsOf relates the matched contacts and leads to the EmailMessage:
// FromAddress for the sender, ToAddress for the others.
func relationsOf(m *sink.Message, id string) []map[string]any {
	if m.Match == nil {
		return nil
	}
	from := ""
	if len(m.From) > 0 {
		from = strings.ToLower(m.From[0].Email)
	}
	var out []map[string]any
	for _, r := range m.Match.Records {
		if r.Kind != sink.KindContact && r.Kind != sink.KindLead {
			continue
		}
		typ := "ToAddress"
		if r.Email != "" && strings.EqualFold(r.Email, from) {
			typ = "FromAddress"
		}
		out = append(out, map[string]any{
			"attributes":     map[string]any{"type": "EmailMessageRelation"},
			"EmailMessageId": id, "RelationId": r.ID, "RelationType": typ,
		})
	}
	return out
}
