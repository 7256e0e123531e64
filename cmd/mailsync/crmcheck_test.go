package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink/pipedrive/pipedrivetest"
	"github.com/mailsync/mailsync/sync/sink/salesforce/salesforcetest"
)

// TestCheckCRMSinks runs mailsync check against the spec-validated
// Pipedrive and Salesforce fakes: a good token passes with the rights
// verified; a refused one fails with what to fix, and never shows the token.
func TestCheckCRMSinks(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithTLS(), dovecottest.WithUsers(map[string]string{"alice": checkPassword}))
	acct := checkAcct{port: srv.TLSPort(), tls: "implicit", caFile: srv.CAFile, password: checkPassword, folders: "[inbox]"}
	pd := pipedrivetest.Start(t)
	sf := salesforcetest.Start(t)
	dir := t.TempDir()
	pdTok, sfTok := filepath.Join(dir, "pd.token"), filepath.Join(dir, "sf.token")
	os.WriteFile(pdTok, []byte(pipedrivetest.Token), 0o600)
	os.WriteFile(sfTok, []byte(salesforcetest.Token), 0o600)
	pdSink := fmt.Sprintf("{type: pipedrive, pipedrive: {base_url: %q, api_token_file: %s}}", pd.URL, pdTok)
	sfSink := fmt.Sprintf("{type: salesforce, salesforce: {instance_url: %q, token_file: %s}}", sf.URL, sfTok)
	for _, tt := range []struct {
		name     string
		sink     string
		refuse   func()
		wantCode int
		want     string
	}{
		{"pipedrive", pdSink, nil, 0, "PASS  sink pipedrive: logged in, rights verified; the matcher looks records up in it"},
		{"pipedrive revoked", pdSink, func() { pd.SetToken("other") }, 1, "create a personal API token in Pipedrive"},
		{"salesforce", sfSink, nil, 0, "PASS  sink salesforce: logged in, rights verified; the matcher looks records up in it"},
		{"salesforce expired", sfSink, func() { sf.SetToken("other") }, 1, "re-authentication needed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.refuse != nil {
				tt.refuse()
			}
			cfg := writeCheckConfig(t, acct, tt.sink)
			out, errOut, code := runCLI(t, context.Background(), "check", "-c", cfg)
			if code != tt.wantCode || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d, with %q in:\n%s\n%s", code, tt.wantCode, tt.want, out, errOut)
			}
			for _, tok := range []string{pipedrivetest.Token, salesforcetest.Token} {
				if strings.Contains(out+errOut, tok) {
					t.Errorf("a token appears in the output")
				}
			}
		})
	}
}
