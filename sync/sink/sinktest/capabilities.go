package sinktest

import (
	"context"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
)

// Directory is the matcher's look-up capability (matcher.Directory), named
// here so the suite needs no matcher import.
type Directory interface {
	LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error)
	LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error)
}

// DirectoryFixture names what the CRM behind a Directory holds: a person
// at a company with an open deal, the company's domain, and an address and
// a domain it does not know.
type DirectoryFixture struct {
	KnownEmail, KnownDomain, UnknownEmail, UnknownDomain string
}

// RunDirectory checks a Directory: batched look-ups answer for each key
// they know and leave the others out, a person carries its company and its
// open deals, a company is found by domain, and every record says how it
// was found (match --explain shows it).
func RunDirectory(t *testing.T, d Directory, fx DirectoryFixture) {
	ctx, cancel := context.WithTimeout(context.Background(), contractTimeout)
	defer cancel()
	got, err := d.LookupEmails(ctx, []string{fx.KnownEmail, fx.UnknownEmail})
	if err != nil {
		t.Fatalf("LookupEmails: %v", err)
	}
	people := got[fx.KnownEmail]
	if len(people) == 0 {
		t.Fatalf("LookupEmails(%s) found nothing", fx.KnownEmail)
	}
	if len(got[fx.UnknownEmail]) != 0 {
		t.Errorf("LookupEmails(%s) = %+v, want absent", fx.UnknownEmail, got[fx.UnknownEmail])
	}
	for k := range got {
		if k != strings.ToLower(k) || (k != fx.KnownEmail && k != fx.UnknownEmail) {
			t.Errorf("LookupEmails answered for %q, which was not asked", k)
		}
	}
	p := people[0]
	if p.ID == "" || (p.Kind != sink.KindContact && p.Kind != sink.KindLead) || p.Via == "" {
		t.Errorf("person = %+v, want a contact or lead with an ID and Via", p)
	}
	if p.Company == "" {
		t.Errorf("person %s has no company", p.Key())
	}
	open := 0
	for _, dl := range p.Deals {
		if dl.ID == "" {
			t.Errorf("person %s has a deal without an ID", p.Key())
		}
		if dl.Open {
			open++
		}
	}
	if open == 0 {
		t.Errorf("person %s has no open deal: %+v", p.Key(), p.Deals)
	}
	doms, err := d.LookupDomains(ctx, []string{fx.KnownDomain, fx.UnknownDomain})
	if err != nil {
		t.Fatalf("LookupDomains: %v", err)
	}
	cs := doms[fx.KnownDomain]
	if len(cs) == 0 || cs[0].Kind != sink.KindCompany || cs[0].ID != p.Company || cs[0].Via == "" {
		t.Errorf("LookupDomains(%s) = %+v, want the person's company %s with Via", fx.KnownDomain, cs, p.Company)
	}
	if len(doms[fx.UnknownDomain]) != 0 {
		t.Errorf("LookupDomains(%s) = %+v, want absent", fx.UnknownDomain, doms[fx.UnknownDomain])
	}
	if empty, err := d.LookupEmails(ctx, nil); err != nil || len(empty) != 0 {
		t.Errorf("LookupEmails(nil) = %v, %v; want nothing", empty, err)
	}
}

// RunUnlinker checks an Unlinker: a delivered message is not reported
// while it is in the CRM; once removeInCRM took it out it is reported, and
// after AckUnlinked no more. m must be deliverable to this CRM.
func RunUnlinker(t *testing.T, s sink.Sink, m *sink.Message, removeInCRM func(t *testing.T, activity string)) {
	u, ok := s.(sink.Unlinker)
	if !ok {
		t.Fatalf("%T does not implement sink.Unlinker", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), contractTimeout)
	defer cancel()
	act := deliver(t, ctx, s, m)
	if keys, err := u.Unlinked(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("Unlinked before removal = %v, %v; want none", keys, err)
	}
	removeInCRM(t, act)
	keys, err := u.Unlinked(ctx)
	if err != nil || len(keys) != 1 || keys[0] != m.Key {
		t.Fatalf("Unlinked after removal = %v, %v; want [%s]", keys, err, m.Key)
	}
	if err := u.AckUnlinked(ctx, keys); err != nil {
		t.Fatalf("AckUnlinked: %v", err)
	}
	if keys, err := u.Unlinked(ctx); err != nil || len(keys) != 0 {
		t.Errorf("Unlinked after ack = %v, %v; want none", keys, err)
	}
}

// RunCreated checks auto-create: a message carrying a create intent comes
// back with the created record in its receipt, and redelivering it (also
// through a second sink over the same CRM, as after a lost state file)
// returns the same record rather than creating another.
func RunCreated(t *testing.T, newSink func(t *testing.T) sink.Sink, m *sink.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), contractTimeout)
	defer cancel()
	var first []sink.Record
	for i := range 2 {
		s := newSink(t)
		r, err := sink.DeliverOne(ctx, s, m)
		s.Close()
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if len(r.Created) == 0 || r.Created[0].ID == "" || !r.Created[0].Kind.Valid() {
			t.Fatalf("delivery %d: Created = %+v, want the created record", i, r.Created)
		}
		if i == 0 {
			first = r.Created
		} else if r.Created[0].Key() != first[0].Key() {
			t.Errorf("redelivery created %s, first delivery %s: want one record", r.Created[0].Key(), first[0].Key())
		}
	}
}
