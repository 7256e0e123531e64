package worker

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/sink"
)

// classify parses each item's header, derives its key and asks the matcher
// what to do with it. A message that cannot be processed at all is parked
// with its reason; it never blocks the folder.
func (f *folderWorker) classify(ctx context.Context, items []*item) error {
	inputs := make([]matcher.Input, 0, len(items))
	idx := make([]*item, 0, len(items))
	for _, it := range items {
		msg, err := parseItem(it)
		if err != nil {
			it.action, it.reason = actDeadLetter, err.Error()
			continue
		}
		inputs = append(inputs, matcher.Input{
			Msg: msg, Account: f.acct.cfg.ID, Policy: f.acct.policy, Folder: f.name, FolderRole: f.role,
			Keywords: keywords(it.flags),
		})
		idx = append(idx, it)
	}
	if len(inputs) == 0 {
		return nil
	}
	decisions, err := f.sup.matcher().MatchBatch(ctx, inputs)
	if err != nil {
		return fmt.Errorf("match: %w", err)
	}
	for i, d := range decisions {
		applyDecision(idx[i], inputs[i].Msg, d)
	}
	return nil
}

// parseItem parses the header and computes the key. ParseHeader never
// fails on bad mail (it reports what it could not parse); a panic in it is
// a bug, and turns the message into a dead letter instead of a crash loop.
func parseItem(it *item) (msg *matcher.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("header could not be processed: %v\n%s", r, firstLines(debug.Stack(), 6))
			it.key = sink.KeyFor("", "", time.Time{}, it.header)
		}
	}()
	if len(it.header) == 0 {
		it.key = fmt.Sprintf("msg_noheader_%d_%d", it.internalDate.Unix(), it.size)
	}
	id, msg := store.Identify(it.header)
	if it.key == "" {
		it.key = id.Key
	}
	it.messageID, it.hash = id.MessageID, id.ContentHash
	return msg, nil
}

func applyDecision(it *item, msg *matcher.Message, d *matcher.Decision) {
	switch d.Action {
	case matcher.Exclude:
		it.action, it.reason = actExclude, d.Reason.Code+": "+d.Reason.Text
		return
	case matcher.Skip:
		it.action, it.reason = actSkip, d.Reason.Code+": "+d.Reason.Text
		return
	}
	it.action = actDeliver
	m := &sink.Message{
		Key: it.key, Event: sink.EventMessage, Direction: sink.Direction(d.Direction),
		MessageID: msg.MessageID, Date: msg.Date, Subject: msg.Subject,
		From: addrs(msg.From), To: addrs(msg.To), Cc: addrs(msg.Cc), Bcc: addrs(msg.Bcc),
		Size: it.size, Flags: flagStrings(it.flags), ParseErrors: msg.ParseErrors,
		Match: &sink.Match{Rule: d.Rule},
	}
	if m.Date.IsZero() {
		m.Date = it.internalDate
	}
	for _, r := range d.Records {
		m.Match.Records = append(m.Match.Records, r.Ref())
	}
	for _, in := range d.Intents {
		m.Match.Intents = append(m.Match.Intents, sink.Intent{Action: in.Action, Kind: in.Kind, Fields: in.Fields})
	}
	if !d.Include.Subject {
		m.Subject = ""
	}
	// The privacy level decides whether the body is fetched at all.
	if d.Include.Body {
		it.needBody = true
	} else {
		m.BodyOmitted = true
	}
	it.msg = m
}

func addrs(in []matcher.Address) []sink.Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]sink.Address, len(in))
	for i, a := range in {
		out[i] = sink.Address{Name: a.Name, Email: a.Email}
	}
	return out
}

func keywords(flags []imap.Flag) []string {
	var out []string
	for _, fl := range flags {
		if !strings.HasPrefix(string(fl), `\`) {
			out = append(out, string(fl))
		}
	}
	return out
}

func flagStrings(flags []imap.Flag) []string {
	out := make([]string, len(flags))
	for i, fl := range flags {
		out[i] = string(fl)
	}
	return out
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
