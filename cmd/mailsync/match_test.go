package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
)

func writeMatchConfig(t *testing.T, port int) string {
	t.Helper()
	dir := t.TempDir()
	dirCSV, err := filepath.Abs("../../matcher/testdata/directory.csv")
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte(dovecottest.DefaultPassword), 0o600)
	cfg := fmt.Sprintf(`state: %s/state.db
sink: {type: jsonl, jsonl: {path: %s/out.jsonl}}
matcher:
  directory_file: %s
  own_domains: [ourco.com, ourco.de, acme.example]
  tags: [{name: deal-tag, pattern: '\[#DEAL-(\d+)\]', kind: deal, id: 'D-$1'}]
accounts:
  - {id: sales, host: 127.0.0.1, port: %d, tls: none, username: alice, password_file: %s, matcher: {capture: matched}}
`, dir, dir, dirCSV, port, pw)
	path := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	return path
}

func runMain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb}
	code = m.Run(context.Background(), args)
	return out.String(), errb.String(), code
}

func TestMatchExplain(t *testing.T) {
	cfg := writeMatchConfig(t, 143)
	eml := "../../matcher/testdata/corpus/001-inbound-contact-open-deals.eml"
	out, errOut, code := runMain(t, "match", "--config", cfg, "--explain", eml)
	if code != 0 {
		t.Fatalf("match --explain exited %d: %s", code, errOut)
	}
	for _, want := range []string{"deliver", "inbound", "address"} {
		if !strings.Contains(strings.ToLower(out), want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runMain(t, "match", "--config", cfg, "--explain", eml, "--json")
	var d struct {
		Action    string `json:"action"`
		Direction string `json:"direction"`
		Records   []struct{ Kind, ID string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("match --json exited %d with %q", code, out)
	}
	if d.Action != "deliver" || d.Direction != "inbound" || len(d.Records) == 0 {
		t.Fatalf("decision = %+v, want a delivered inbound message linked to records", d)
	}
	// A private keyword excludes it, and the explanation says so.
	out, _, _ = runMain(t, "match", "--config", cfg, "--explain", eml, "--keyword", "$CRMPrivate")
	if !strings.Contains(out, "private") {
		t.Errorf("explain with $CRMPrivate does not mention the private exclusion:\n%s", out)
	}
}

func TestMatchDryRunAgainstDovecot(t *testing.T) {
	srv := dovecottest.Start(t)
	g := mailgen.New(3, mailgen.Options{AvgSize: 3000})
	msgs := make([][]byte, 40)
	for i := range msgs {
		msgs[i] = g.Next()
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	cfg := writeMatchConfig(t, srv.Port())
	out, errOut, code := runMain(t, "match", "--config", cfg, "--dry-run", "--account", "sales", "--folder", "INBOX", "--json")
	if code != 0 {
		t.Fatalf("match --dry-run exited %d: %s", code, errOut)
	}
	var sum struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Total != 40 {
		t.Fatalf("dry run summary = %q (%v), want 40 messages", out, err)
	}
	// Nothing was delivered.
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "out.jsonl")); err == nil {
		t.Fatal("dry run created the sink file")
	}
	// A --dry-run must not touch flags either.
	for uid, fl := range srv.Flags(t, dovecottest.DefaultUser, "INBOX") {
		if len(fl) != 0 {
			t.Fatalf("uid %d has flags %v after a dry run", uid, fl)
		}
	}
}
