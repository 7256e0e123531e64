package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadErrorMessages: each problem said once, in the file's terms, with
// the bad value and no Go internals; several problems one per line
// (issue 14, item 8).
func TestLoadErrorMessages(t *testing.T) {
	acct := "accounts:\n  - {id: sales, host: h, username: u, password_env: X%s}\n"
	tests := []struct {
		name, yaml string
		want       []string // the problems, in order
	}{
		{"port not a number", "state: s.db\n" + strings.ReplaceAll(acct, "%s", ", port: 99x"),
			[]string{`accounts[sales].port: want a whole number, not "99x"`}},
		{"duration unit", "state: s.db\nsync: {retry_max: 5min}\n" + strings.ReplaceAll(acct, "%s", ""),
			[]string{`sync.retry_max: want a duration such as 30s, 5m or 1h30m (units ms, s, m, h), not "5min"`}},
		{"yaml syntax", "state: [\n", []string{"line 1: did not find expected node content"}},
		{"empty file", "", []string{"state: state file path is empty", "accounts: no accounts configured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tt.yaml), 0o600)
			_, err := Load(path)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load() error = %v (%T), want a *config.Error", err, err)
			}
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			msg := err.Error()
			for _, internal := range []string{"strconv", "time: ", ": yaml: ", "While parsing"} {
				if strings.Contains(msg, internal) {
					t.Errorf("message shows Go internals %q: %s", internal, msg)
				}
			}
			if len(tt.want) > 1 {
				if want := "config " + path + ": 2 problems:\n  " + strings.Join(tt.want, "\n  "); msg != want {
					t.Errorf("Error() = %q, want %q", msg, want)
				}
			}
		})
	}
}
