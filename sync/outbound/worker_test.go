package outbound

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
	"github.com/mailsync/mailsync/sync/worker"
)

// TestWorkerRecognisesTheSentCopy runs the real sync pipeline over Sent
// after a send: it must take the copy mailsync filed for a message it
// already logged (duplicate: provenance only, nothing to the sink), while a
// message the user sent from a mail client, in the same folder, is
// delivered. The second half is what makes the first one able to fail.
func TestWorkerRecognisesTheSentCopy(t *testing.T) {
	r := newRig(t, rigOptions{
		topExtra:  "matcher:\n  own_domains: [acme.example]\n  keep: {internal: true, bulk: true, auto_replies: true, bounces: true}\n",
		acctExtra: "    start: all\n    folders: [sent]\n    matcher: {capture: all}\n",
	})
	code, body := r.post(accountID, sendBody("worker-sees-it"))
	if code != 200 {
		t.Fatalf("POST = %d %v", code, body)
	}
	key := body["key"].(string)
	uid := uint32(body["uid"].(float64))
	other := []byte("From: Alice <alice@acme.example>\r\nTo: dave@customer.example\r\nSubject: from a mail client\r\n" +
		"Message-ID: <client-1@acme.example>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n\r\nhi\r\n")
	otherUID := uint32(r.dovecot.Append(t, mailUser, "Sent", other, imap.FlagSeen))
	otherKey := identify(other).key

	snk, err := jsonl.Open(jsonl.Config{Path: filepath.Join(r.dir, "m.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := matcher.New(r.cfg.Matcher.Config, noDirectory{}, threads{r.store})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan worker.Event, 100)
	sup, err := worker.New(r.cfg, worker.Deps{Store: r.store, Sink: snk, Matcher: m, Logger: testLogger(t),
		Observer: func(ev worker.Event) {
			select {
			case events <- ev:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sup.Start(ctx)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			sup.Stop(5*time.Second, nil)
			snk.Close()
		}
	}
	defer stop()

	got := map[uint32]worker.Event{}
	deadline := time.After(time.Minute)
	for len(got) < 2 {
		select {
		case ev := <-events:
			if ev.Account == accountID && ev.Folder == "Sent" {
				got[ev.UID] = ev
			}
		case <-deadline:
			t.Fatalf("the worker reported %v within a minute, want events for uids %d and %d", got, uid, otherUID)
		}
	}
	stop()
	if ev := got[uid]; ev.Key != key || ev.Action != "duplicate" {
		t.Errorf("the filed copy: worker event %+v, want key %s and action duplicate", ev, key)
	}
	if ev := got[otherUID]; ev.Key != otherKey || ev.Action != "deliver" {
		t.Errorf("the mail client's message: worker event %+v, want key %s delivered", ev, otherKey)
	}
	e, ok := r.ledger(key)
	if !ok || len(e.Provenance) != 1 || e.Provenance[0].UID != uid || len(e.Records) != len(testRecords) {
		t.Errorf("ledger entry after the sync = %+v, %v; want one provenance at uid %d and the request's records", e, ok, uid)
	}
}

type noDirectory struct{}

func (noDirectory) LookupEmails(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}

func (noDirectory) LookupDomains(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}

// threads adapts the state file to the matcher, as the daemon does.
type threads struct{ st *store.Store }

func (ti threads) ThreadRecords(_ context.Context, ids []string) ([]sink.Record, error) {
	recs, err := ti.st.ThreadRecords(ids)
	out := make([]sink.Record, len(recs))
	for i, r := range recs {
		out[i] = sink.Record{Kind: sink.Kind(r.Kind), ID: r.ID, Name: r.Name}
	}
	return out, err
}
