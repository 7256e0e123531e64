package matcher_test

import (
	"strings"
	"testing"

	"github.com/mailsync/mailsync/matcher"
)

func TestConfigValidate(t *testing.T) {
	cfg := matcher.Config{
		OwnDomains: []string{"ok.com", "bad@domain"},
		Rules:      []string{"thread", "address", "x", "address"},
		Tags:       []matcher.TagRule{{Pattern: "(", Kind: "deal"}, {Pattern: `#(\d+)`, Kind: "ticket"}},
		DealPolicy: "newest",
		Blocklist:  matcher.Blocklist{Patterns: []string{"re:(", "[bad"}},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	for _, want := range []string{
		`matcher.own_domains[1]:`,
		`matcher.rules[2]: unknown rule "x"`,
		`matcher.rules[3]: rule "address" already listed at rules[1]`,
		`matcher.tags[0]: invalid pattern`,
		`matcher.tags[1]: unknown record kind "ticket"`,
		`matcher.deal_policy: unknown deal policy "newest"`,
		`matcher.blocklist.patterns[0]:`,
		`matcher.blocklist.patterns[1]:`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() error lacks %q:\n%v", want, err)
		}
	}
	if _, err := matcher.New(cfg, newFakeDir(), nil); err == nil {
		t.Error("New accepted an invalid config")
	}
	base := baseConfig()
	if err := base.Validate(); err != nil {
		t.Errorf("base config: %v", err)
	}

	p := matcher.AccountPolicy{Capture: "some", Privacy: "none", Aliases: []string{"nope"}, LogFolders: []string{"[x"},
		AutoCreate: matcher.AutoCreate{Lead: matcher.CreateRule{Kind: "person"}}}
	err = p.Validate("accounts[sales].matcher")
	for _, want := range []string{
		`accounts[sales].matcher.capture: unknown capture mode "some"`,
		`accounts[sales].matcher.privacy: unknown privacy level "none"`,
		`accounts[sales].matcher.aliases[0]:`,
		`accounts[sales].matcher.log_folders[0]:`,
		`accounts[sales].matcher.auto_create.lead.kind: unknown record kind "person"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("AccountPolicy.Validate error lacks %q:\n%v", want, err)
		}
	}
	if _, err := matcher.New(baseConfig(), nil, nil); err == nil {
		t.Error("New accepted a nil directory")
	}
}
