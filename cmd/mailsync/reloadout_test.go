package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/control"
)

// TestReloadOutputStaysShortAtScale: a reload that adds one account to
// 999 prints the new id and a count of the others, not 999 ids.
func TestReloadOutputStaysShortAtScale(t *testing.T) {
	res := &control.ReloadResult{Added: []string{"new"}}
	for i := range 999 {
		res.Unchanged = append(res.Unchanged, fmt.Sprintf("acct-%04d", i))
	}
	var b strings.Builder
	printReload(&b, res)
	out := b.String()
	if len(out) > 400 || !strings.Contains(out, "added      new\n") || !strings.Contains(out, "and 989 more (999 accounts)") {
		t.Fatalf("reload output (%d bytes):\n%s", len(out), out)
	}
	b.Reset()
	printReload(&b, &control.ReloadResult{Unchanged: []string{"alice"}})
	if !strings.Contains(b.String(), "unchanged  alice\n") {
		t.Fatalf("a few unchanged ids should be listed:\n%s", b.String())
	}
}
