package odoo_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/odoo"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

// onJane points sinktest's messages (matched to a made-up company) at the
// world's contact, so Odoo has a record to log them on.
type onJane struct {
	*odoo.Sink
	recs []sink.Record
}

func (s onJane) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	out := make([]*sink.Message, len(ms))
	for i, m := range ms {
		c := *m
		c.Match = &sink.Match{Rule: "test", Records: s.recs}
		out[i] = &c
	}
	return s.Sink.Deliver(ctx, out)
}

// inspect counts, per sinktest key, the mail.message rows on Jane.
func (w *world) inspect(t *testing.T) map[string]int {
	var rows []struct {
		MessageID string `json:"message_id"`
	}
	w.o.Call(t, "mail.message", "search_read", []any{[]any{[]any{"model", "=", "res.partner"}, []any{"res_id", "=", w.jane}, []any{"message_type", "=", "email"}}},
		map[string]any{"fields": []string{"message_id"}}, &rows)
	out := map[string]int{}
	for _, r := range rows {
		out[strings.TrimSuffix(strings.TrimPrefix(r.MessageID, "<"), "@mail.example.com>")]++
	}
	return out
}

func TestContract(t *testing.T) {
	sinktest.RunContract(t, func(t *testing.T) (sink.Sink, sinktest.Inspect) {
		w := newWorld(t)
		s := onJane{Sink: w.open(t, nil), recs: []sink.Record{{Kind: sink.KindContact, ID: strconv.Itoa(w.jane)}}}
		return s, w.inspect
	})
}

func TestContractDirectory(t *testing.T) {
	w := newWorld(t)
	sinktest.RunDirectory(t, w.open(t, nil), sinktest.DirectoryFixture{
		KnownEmail: "jane@acme.example", KnownDomain: "acme.example",
		UnknownEmail: "nobody@acme.example", UnknownDomain: "nowhere.example",
	})
}

func TestContractUnlinker(t *testing.T) {
	w := newWorld(t)
	m := w.message("unl", "<unl@acme.example>", "Unlink me")
	sinktest.RunUnlinker(t, w.open(t, nil), m, func(t *testing.T, activity string) {
		var ids []int
		for _, f := range strings.Split(activity, ",") {
			n, _ := strconv.Atoi(f)
			ids = append(ids, n)
		}
		w.o.Call(t, "mail.message", "unlink", []any{ids}, nil, nil)
	})
}

func TestContractCreated(t *testing.T) {
	w := newWorld(t)
	m := &sink.Message{Key: "cr", Event: sink.EventMessage, MessageID: "<cr@newco.example>", Subject: "Hello",
		From: []sink.Address{{Email: "ann@newco.example"}}, Body: rawMail("<cr@newco.example>", "Hello", "hi"),
		Match: &sink.Match{Intents: []sink.Intent{{Action: "create", Kind: sink.KindContact, Fields: map[string]string{"email": "ann@newco.example", "name": "Ann"}}}}}
	sinktest.RunCreated(t, func(t *testing.T) sink.Sink { return w.open(t, nil) }, m)
}
