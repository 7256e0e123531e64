package dovecottest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WithOAuth2 turns on the XOAUTH2 and OAUTHBEARER mechanisms, checked by
// Dovecot's oauth2 passdb: for every login the auth process POSTs
// "token=<access token>" to introspectionURL (RFC 7662 style) and accepts
// the token when the JSON answer has "active": true and a "username" equal
// to the login name. Password logins keep working.
//
// The URL must be http on a loopback address (the test's fake identity
// provider); Dovecot is given no CA for https.
func WithOAuth2(introspectionURL string) Option {
	return func(o *options) { o.oauth2Introspection = introspectionURL }
}

// oauth2ConfName is the oauth2 passdb's own settings file in the instance
// directory.
const oauth2ConfName = "dovecot-oauth2.conf.ext"

// renderOAuth2 writes the oauth2 passdb settings file and adds the
// mechanisms and the passdb to the config. Nothing without WithOAuth2.
//
// Settings (Dovecot 2.3 dovecot-oauth2.conf.ext): with no tokeninfo_url,
// the passdb goes straight to introspection; active_attribute/active_value
// make an inactive (revoked, expired) token fail; username_attribute names
// the field compared with the login name after username_format (%Lu).
func (o *options) renderOAuth2(dir string, d *configData) error {
	u := o.oauth2Introspection
	if u == "" {
		return nil
	}
	if strings.ContainsAny(u, " \t\r\n\"") || !strings.HasPrefix(u, "http://127.") {
		return fmt.Errorf("oauth2 introspection url %q: want http://127.x.x.x:port/...", u)
	}
	conf := fmt.Sprintf(`# Written by mailsync's dovecottest harness.
introspection_mode = post
introspection_url = %s
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 10000
`, u)
	path := filepath.Join(dir, oauth2ConfName)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", oauth2ConfName, err)
	}
	// Later settings override earlier ones: the mechanisms line replaces
	// the template's. The passwd-file passdb stays first for PLAIN/LOGIN.
	d.Extra = append([]string{fmt.Sprintf(`auth_mechanisms = plain login xoauth2 oauthbearer
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = %s
}`, path)}, d.Extra...)
	return nil
}
