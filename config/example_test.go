package config

import (
	"testing"
)

// TestExampleConfigParses keeps examples/mailsync.yaml valid: it documents
// every key, so a key renamed in code must be renamed there too.
func TestExampleConfigParses(t *testing.T) {
	cfg, err := Load("../examples/mailsync.yaml")
	if err != nil {
		t.Fatalf("examples/mailsync.yaml: %v", err)
	}
	if got, want := cfg.Accounts[0].ID, "sales"; got != want {
		t.Fatalf("first account = %q, want %q", got, want)
	}
	if got := len(cfg.Matcher.Tags); got != 1 {
		t.Fatalf("matcher.tags has %d entries, want 1", got)
	}
}
