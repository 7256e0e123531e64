package hubspottest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// StartSignIn serves HubSpot's sign-in page (app.hubspot.com's
// /oauth/authorize, not part of the API and so not in the spec) for an
// OAuth fake, as a user who installs the app and approves: it checks the
// client id, the scopes and the redirect URI as HubSpot documents, mints a
// one-time code and redirects back. It returns the authorize URL.
func (s *Server) StartSignIn(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		redirect, err := url.Parse(q.Get("redirect_uri"))
		switch {
		case r.URL.Path != "/oauth/authorize" || r.Method != http.MethodGet:
			http.NotFound(w, r)
			return
		case err != nil || redirect.Scheme == "" || redirect.Host == "":
			s.val.Report("sign-in: redirect_uri %q is not an absolute URL", q.Get("redirect_uri"))
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		case q.Get("client_id") != ClientID:
			s.val.Report("sign-in: unknown client_id %q", q.Get("client_id"))
			http.Error(w, "unknown client", http.StatusBadRequest)
			return
		}
		granted := strings.Fields(q.Get("scope"))
		for _, sc := range s.scopes {
			if !slices.Contains(granted, sc) {
				s.val.Report("sign-in: scope %q not requested (asked for %q)", sc, q.Get("scope"))
			}
		}
		s.mu.Lock()
		code := "code-" + s.newToken()
		s.codes[code] = redirect.String()
		s.mu.Unlock()
		back := redirect.Query()
		back.Set("code", code)
		back.Set("state", q.Get("state"))
		redirect.RawQuery = back.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/oauth/authorize"
}

// RotateRefresh makes the next token answer carry a new refresh token and
// the old one stop working, as a provider that rotates does.
func (s *Server) RotateRefresh() {
	s.mu.Lock()
	s.rotate = true
	s.mu.Unlock()
}
