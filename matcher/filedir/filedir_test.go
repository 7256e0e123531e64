package filedir

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

const goodCSV = `kind,id,name,email,contact,company,domain,open,updated
company,co-1,Acme,,,,acme.com;ACME.co.uk,,
contact,c-1,Alice,Alice@Acme.com,,co-1,,,
lead,l-1,Leo,leo@xn--bcher-kva.de,,,,,
deal,d-1,Old,,c-1,,,true,2024-01-01
deal,d-2,New,alice@acme.com,,,,open,2024-05-01T10:00:00Z
deal,d-3,Won,,c-1,,,won,2024-06-01
deal,d-4,Company deal,,,co-1,,yes,
`

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lookup(t *testing.T, d *Dir, email string) []sink.Record {
	t.Helper()
	res, err := d.LookupEmails(context.Background(), []string{email})
	if err != nil {
		t.Fatal(err)
	}
	return res[email]
}

func TestOpenCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crm.csv")
	write(t, path, goodCSV)
	d, err := Open(path, Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	recs := lookup(t, d, "alice@acme.com")
	if len(recs) != 1 {
		t.Fatalf("alice = %+v", recs)
	}
	a := recs[0]
	if a.Kind != sink.KindContact || a.ID != "c-1" || a.Company != "co-1" || a.CompanyName != "Acme" {
		t.Errorf("alice = %+v", a)
	}
	if got := len(a.Deals); got != 3 {
		t.Fatalf("alice deals = %+v, want 3", a.Deals)
	}
	if a.Deals[2].Open || !a.Deals[1].Open || !a.Deals[1].UpdatedAt.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("deals = %+v", a.Deals)
	}
	if recs := lookup(t, d, "leo@bücher.de"); len(recs) != 1 || recs[0].Kind != sink.KindLead {
		t.Errorf("IDN lead = %+v", recs)
	}
	doms, _ := d.LookupDomains(context.Background(), []string{"acme.co.uk", "acme.com", "nope.example"})
	if len(doms) != 2 || doms["acme.co.uk"][0].ID != "co-1" || len(doms["acme.com"][0].Deals) != 1 {
		t.Errorf("domains = %+v", doms)
	}
}

func TestOpenYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crm.yaml")
	write(t, path, `records:
  - {kind: company, id: co-1, name: Acme, domain: acme.com}
  - kind: contact
    id: c-1
    name: Alice
    email: alice@acme.com
    company: co-1
  - {kind: deal, id: d-1, contact: c-1, open: true, updated: 2024-03-01}
`)
	d, err := Open(path, Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	recs := lookup(t, d, "alice@acme.com")
	if len(recs) != 1 || len(recs[0].Deals) != 1 || recs[0].CompanyName != "Acme" {
		t.Errorf("alice = %+v", recs)
	}
}

func TestBadRows(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                []string
	}{
		{"csv", "crm.csv", "kind,id,email,open,updated,contact\ncontact,c-1,not-an-address,,,\nperson,p-1,x@y.com,,,\ndeal,d-1,,maybe,,c-1\ndeal,d-2,,true,yesterday,c-1\ndeal,d-3,,true,,c-404\ncontact,,a@b.com,,,\n",
			[]string{"crm.csv:2: field email:", "crm.csv:3: field kind: unknown kind \"person\"", "crm.csv:4: field open:", "crm.csv:5: field updated: invalid date", "crm.csv:6: field contact: no contact or lead with id \"c-404\"", "crm.csv:7: field id: empty"}},
		{"csv missing column", "crm.csv", "kind,name\ncontact,x\n", []string{"crm.csv:1: field id: column missing"}},
		{"csv quote", "crm.csv", "kind,id\ncontact,\"c-1\n", []string{"crm.csv:2:"}},
		{"yaml", "crm.yaml", "records:\n  - kind: contact\n    id: c-1\n    email: broken\n  - kind: deal\n    id: d-1\n    company: co-9\n",
			[]string{"crm.yaml:4: field email:", "crm.yaml:7: field company: no company with id \"co-9\""}},
		{"yaml shape", "crm.yml", "records: 3\n", []string{"crm.yml:1: field records: want a list"}},
		{"extension", "crm.txt", "", []string{"unknown extension"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			write(t, path, tc.content)
			_, err := Open(path, Options{Logger: quiet()})
			if err == nil {
				t.Fatal("Open succeeded, want errors")
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Dir(path)+string(filepath.Separator), "")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			var re *RowError
			if tc.name == "csv" && !errors.As(err, &re) {
				t.Errorf("error %T is not a *RowError", err)
			}
		})
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crm.csv")
	write(t, path, "kind,id,email\ncontact,c-1,a@x.example\n")
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	d, err := Open(path, Options{CheckInterval: time.Minute, Logger: quiet(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	touch := func(content string, mtime time.Time) {
		write(t, path, content)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Now().Add(time.Hour)
	touch("kind,id,email\ncontact,c-2,b@x.example\n", mtime)

	if recs := lookup(t, d, "a@x.example"); len(recs) != 1 {
		t.Fatalf("before the interval the old data must still serve, got %+v", recs)
	}
	advance(2 * time.Minute)
	if recs := lookup(t, d, "b@x.example"); len(recs) != 1 || recs[0].ID != "c-2" {
		t.Fatalf("after change: %+v", recs)
	}
	if d.Loads() != 2 {
		t.Errorf("Loads = %d, want 2", d.Loads())
	}

	// A bad edit keeps the last good data and reports the error.
	touch("kind,id,email\ncontact,c-3,broken\n", mtime.Add(time.Minute))
	advance(2 * time.Minute)
	if recs := lookup(t, d, "b@x.example"); len(recs) != 1 {
		t.Errorf("after bad edit: %+v, want last good data", recs)
	}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), ":2: field email") {
		t.Errorf("Err() = %v, want the row error", err)
	}
	// Fixing it clears the error.
	touch("kind,id,email\ncontact,c-4,c@x.example\n", mtime.Add(2*time.Minute))
	advance(2 * time.Minute)
	if recs := lookup(t, d, "c@x.example"); len(recs) != 1 || d.Err() != nil {
		t.Errorf("after fix: %+v, err %v", recs, d.Err())
	}
	// An unchanged file is not re-read.
	advance(2 * time.Minute)
	lookup(t, d, "c@x.example")
	if d.Loads() != 3 {
		t.Errorf("Loads = %d, want 3", d.Loads())
	}
}

func TestConcurrentLookupsDuringReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crm.csv")
	write(t, path, goodCSV)
	d, err := Open(path, Options{CheckInterval: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := d.LookupEmails(context.Background(), []string{"alice@acme.com"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		write(t, path, goodCSV+strings.Repeat("\n", i+1))
	}
	wg.Wait()
	if recs := lookup(t, d, "alice@acme.com"); len(recs) != 1 {
		t.Errorf("after reloads: %+v", recs)
	}
}

func TestFixtureLoads(t *testing.T) {
	d, err := Open(filepath.Join("..", "testdata", "directory.csv"), Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if recs := lookup(t, d, "greta@bücher.de"); len(recs) != 1 || recs[0].CompanyName != "Bücher GmbH" {
		t.Errorf("greta = %+v", recs)
	}
}
