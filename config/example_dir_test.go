package config

import (
	"context"
	"testing"

	"github.com/mailsync/mailsync/matcher/filedir"
)

// TestExampleDirectoryFile: the directory file the README points new
// admins at loads, and links the contact to the company and its deals.
func TestExampleDirectoryFile(t *testing.T) {
	d, err := filedir.Open("../examples/directory.csv", filedir.Options{})
	if err != nil {
		t.Fatalf("examples/directory.csv: %v", err)
	}
	recs, err := d.LookupEmails(context.Background(), []string{"grace.liu@contoso.example"})
	if err != nil {
		t.Fatal(err)
	}
	got := recs["grace.liu@contoso.example"]
	if len(got) != 1 || got[0].ID != "P-007" || got[0].CompanyName != "Contoso Ltd" || len(got[0].Deals) != 1 {
		t.Fatalf("grace.liu = %+v, want contact P-007 at Contoso Ltd with deal D-1042", got)
	}
	doms, err := d.LookupDomains(context.Background(), []string{"contoso.co.uk"})
	if err != nil || len(doms["contoso.co.uk"]) != 1 || len(doms["contoso.co.uk"][0].Deals) != 1 {
		t.Fatalf("contoso.co.uk = %+v, %v, want company C-100 with its deal", doms, err)
	}
}
