package matcher_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

// fakeDir is an in-memory Directory that counts its calls.
type fakeDir struct {
	mu          sync.Mutex
	emails      map[string][]sink.Record
	domains     map[string][]sink.Record
	emailCalls  int
	domainCalls int
	asked       []string
	err         error
}

func (f *fakeDir) LookupEmails(_ context.Context, keys []string) (map[string][]sink.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emailCalls++
	f.asked = append(f.asked, keys...)
	if f.err != nil {
		return nil, f.err
	}
	return pick(f.emails, keys), nil
}

func (f *fakeDir) LookupDomains(_ context.Context, keys []string) (map[string][]sink.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.domainCalls++
	f.asked = append(f.asked, keys...)
	if f.err != nil {
		return nil, f.err
	}
	return pick(f.domains, keys), nil
}

func (f *fakeDir) calls() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.emailCalls, f.domainCalls
}

func pick(m map[string][]sink.Record, keys []string) map[string][]sink.Record {
	out := map[string][]sink.Record{}
	for _, k := range keys {
		if r, ok := m[k]; ok {
			out[k] = r
		}
	}
	return out
}

var (
	day = func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }

	recAlice = sink.Record{Kind: sink.KindContact, ID: "c-alice", Name: "Alice", Email: "alice@acme.com", Company: "co-acme", CompanyName: "Acme",
		Deals: []sink.Deal{{ID: "d-old", Open: true, UpdatedAt: day(1)}, {ID: "d-new", Open: true, UpdatedAt: day(20)}, {ID: "d-closed", Open: false, UpdatedAt: day(30)}}}
	recBob   = sink.Record{Kind: sink.KindContact, ID: "c-bob", Name: "Bob", Email: "bob@acme.com", Company: "co-acme"}
	recLead  = sink.Record{Kind: sink.KindLead, ID: "l-kate", Name: "Kate", Email: "kate@tyrell.com"}
	recAcme  = sink.Record{Kind: sink.KindCompany, ID: "co-acme", Name: "Acme", Domain: "acme.com", Deals: []sink.Deal{{ID: "d-co", Open: true}}}
	recUmbr  = sink.Record{Kind: sink.KindCompany, ID: "co-umbrella", Name: "Umbrella", Domain: "umbrella.com"}
	errFlaky = errors.New("crm unavailable")
)

func newFakeDir() *fakeDir {
	return &fakeDir{
		emails: map[string][]sink.Record{
			"alice@acme.com":  {recAlice},
			"bob@acme.com":    {recBob},
			"kate@tyrell.com": {recLead},
		},
		domains: map[string][]sink.Record{
			"acme.com":     {recAcme},
			"umbrella.com": {recUmbr},
		},
	}
}

// baseConfig is a small configuration most unit tests start from.
func baseConfig() matcher.Config {
	return matcher.Config{
		OwnDomains:        []string{"ourco.com"},
		FoldPlusAddresses: true,
		Tags:              []matcher.TagRule{{Name: "deal", Pattern: `\[#DEAL-(\d+)\]`, Kind: "deal", ID: "D-$1"}},
	}
}

func newMatcher(t testing.TB, cfg matcher.Config, dir matcher.Directory, th matcher.ThreadIndex) *matcher.Matcher {
	t.Helper()
	m, err := matcher.New(cfg, dir, th)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// hdr builds a header block from "Key: value" lines.
func hdr(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

func parse(t testing.TB, lines ...string) *matcher.Message {
	t.Helper()
	m, err := matcher.ParseHeader(hdr(lines...))
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	return m
}

// inbound is a plain message from "from" to an own address.
func inbound(t testing.TB, from string, extra ...string) *matcher.Message {
	return parse(t, append([]string{"From: " + from, "To: tom@ourco.com", "Subject: hello", "Message-ID: <m1@x>"}, extra...)...)
}

func match(t testing.TB, m *matcher.Matcher, in matcher.Input) *matcher.Decision {
	t.Helper()
	d, err := m.Match(context.Background(), in)
	if err != nil {
		t.Fatalf("Match: %v", err)
	}
	return d
}

func keys(rs []sink.Record) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Key())
	}
	return strings.Join(out, ",")
}
