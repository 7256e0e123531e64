package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink"
)

const customerMail = "From: Grace Liu <grace@contoso.example>\r\n" +
	"To: Sales <sales@acme.example>, Support <support@acme.example>\r\n" +
	"Cc: Ops <ops@acme.example>\r\n" +
	"Subject: Renewal for 2027\r\n" +
	"Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n" +
	"Message-ID: <renewal-2027@contoso.example>\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
	"Hello all, can we talk about the renewal?\r\n"

func threeMailboxes(t *testing.T) (*dovecottest.Server, map[string]string) {
	users := map[string]string{"sales": dovecottest.DefaultPassword, "support": dovecottest.DefaultPassword, "ops": dovecottest.DefaultPassword}
	accounts := map[string]string{"sales": "sales", "support": "support", "ops": "ops"}
	return dovecottest.Start(t, dovecottest.WithUsers(users)), accounts
}

// TestOneMessageThreeMailboxes: the same message delivered to three
// mailboxes is one activity; the other two copies only add provenance.
func TestOneMessageThreeMailboxes(t *testing.T) {
	srv, accounts := threeMailboxes(t)
	for user := range accounts {
		srv.Append(t, user, "INBOX", []byte(customerMail))
	}
	r := newRig(t, srv, rigOptions{accounts: accounts, folders: []string{"inbox"}})
	r.start()
	waitFor(t, 30*time.Second, "all three copies", func() bool {
		ev := events(t, r)
		return len(ev["message"])+len(ev["provenance"]) == 3
	})
	var entry store.LedgerEntry
	var key string
	ev := events(t, r)
	if got := len(ev["message"]); got != 1 {
		t.Fatalf("%d message events for one message in three mailboxes, want 1", got)
	}
	key = ev["message"][0].Key
	waitFor(t, 10*time.Second, "three provenance entries in the ledger", func() bool {
		r.store.View(func(tx *store.Tx) error { entry, _, _ = tx.Ledger(key); return nil })
		return len(entry.Provenance) == 3
	})
	r.stop()
	seen := map[string]bool{}
	for _, p := range entry.Provenance {
		seen[p.Account] = true
	}
	if len(seen) != 3 {
		t.Fatalf("ledger provenance %+v, want one copy per mailbox", entry.Provenance)
	}
	for _, p := range ev["provenance"] {
		if len(p.Provenance) != 1 || p.Key == key {
			t.Errorf("provenance event %+v: want one new copy, under a key derived from the message's", p)
		}
	}
}

// TestThreadLinksAcrossAccountsAndRestart: a reply arriving in another
// mailbox, after a restart, from an address the CRM does not know, is
// linked to the records of the message it answers, because the state file
// remembers Message-ID → records.
func TestThreadLinksAcrossAccountsAndRestart(t *testing.T) {
	srv, accounts := threeMailboxes(t)
	srv.Append(t, "sales", "INBOX", []byte(customerMail))
	dir := mapDir{"grace@contoso.example": {{Kind: sink.KindContact, ID: "P-7", Name: "Grace Liu"}}}
	r := newRig(t, srv, rigOptions{accounts: accounts, folders: []string{"inbox"}, directory: dir})
	r.start()
	waitFor(t, 30*time.Second, "first message", func() bool { return len(events(t, r)["message"]) == 1 })
	r.stop()

	reply := fmt.Sprintf("From: Someone New <new.person@contoso-partner.example>\r\nTo: Support <support@acme.example>\r\n" +
		"Subject: Re: Renewal for 2027\r\nDate: Tue, 03 Nov 2026 10:00:00 +0000\r\nMessage-ID: <reply-1@contoso-partner.example>\r\n" +
		"In-Reply-To: <renewal-2027@contoso.example>\r\nReferences: <renewal-2027@contoso.example>\r\n\r\nSounds good.\r\n")
	srv.Append(t, "support", "INBOX", []byte(reply))
	r.start()
	waitFor(t, 30*time.Second, "the reply", func() bool { return len(events(t, r)["message"]) == 2 })
	r.stop()
	var got jsonlLine
	readJSONL(t, r.dir+"/messages.jsonl", func(l jsonlLine) {
		if l.MessageID == "reply-1@contoso-partner.example" {
			got = l
		}
	})
	if got.Key == "" {
		t.Fatal("reply not delivered")
	}
	var full struct {
		Match struct {
			Rule    string `json:"rule"`
			Records []struct{ Kind, ID string }
		} `json:"match"`
	}
	readJSONLRaw(t, r.dir+"/messages.jsonl", got.Key, &full)
	if full.Match.Rule != "thread" || len(full.Match.Records) == 0 || full.Match.Records[0].ID != "P-7" {
		t.Fatalf("reply matched %+v, want the thread rule linking P-7", full.Match)
	}
}
