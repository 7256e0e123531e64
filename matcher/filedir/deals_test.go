package filedir

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestDemoDirectoryDeals: the deals column (as the demo's directory has it)
// attaches deals to the row's contact and company.
func TestDemoDirectoryDeals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir.csv")
	os.WriteFile(path, []byte("email,kind,id,name,company,domain,deals\n"+
		",company,CO-1,Northwind,CO-1,northwind.example,DEAL-1042:Northwind 2026 renewal:open:2026-10-01;DEAL-9:Old:lost:2024-01-01\n"+
		"ann@northwind.example,contact,P-1,Ann,CO-1,northwind.example,DEAL-1042:Northwind 2026 renewal:open:2026-10-01\n"), 0o600)
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := d.LookupEmails(context.Background(), []string{"ann@northwind.example"})
	if got := recs["ann@northwind.example"]; len(got) != 1 || len(got[0].Deals) != 1 || got[0].Deals[0].ID != "DEAL-1042" || !got[0].Deals[0].Open {
		t.Fatalf("ann = %+v, want contact P-1 with open deal DEAL-1042", got)
	}
	doms, _ := d.LookupDomains(context.Background(), []string{"northwind.example"})
	if got := doms["northwind.example"]; len(got) != 1 || len(got[0].Deals) != 2 || got[0].Deals[1].Open {
		t.Fatalf("northwind.example = %+v, want company CO-1 with two deals, the second closed", got)
	}
}
