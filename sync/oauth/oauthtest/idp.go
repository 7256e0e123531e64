// Package oauthtest runs a fake OAuth 2.0 identity provider on 127.0.0.1
// for tests: device authorization (RFC 8628), a token endpoint (device
// code, refresh token with rotation, client credentials), token
// introspection (RFC 7662, as Dovecot's oauth2 passdb calls it) and
// controls to revoke and expire tokens and to count what clients asked.
//
// It issues opaque random tokens and remembers every value it issued, so a
// test can search logs and files for them.
package oauthtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure an IdP. Zero values have defaults.
type Options struct {
	// ClientID is the only client accepted; default "mailsync-test".
	ClientID string
	// ClientSecret, when set, must accompany every token request (in the
	// form or as HTTP Basic).
	ClientSecret string
	// AccessTTL is the lifetime of access tokens; default one hour.
	AccessTTL time.Duration
	// NoRotation keeps refresh tokens valid across refreshes; by default
	// each refresh returns a new refresh token and retires the old one.
	NoRotation bool
	// DeviceTTL is how long a device code is valid; default 10 minutes.
	DeviceTTL time.Duration
	// AppUser is the username that client-credentials access tokens
	// introspect to (the mailbox an app-only token may open).
	AppUser string
}

// Grant types as they appear on the wire.
const (
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// IdP is a running fake identity provider. Its methods are safe for
// concurrent use.
type IdP struct {
	srv  *httptest.Server
	opts Options

	mu          sync.Mutex
	devices     map[string]*device // by device code
	refresh     map[string]*refreshToken
	access      map[string]*accessToken
	approveAs   string // approve pending device codes as this user at the next poll
	issued      []string
	grants      map[string]int // grant type → requests
	refreshes   map[string]int // user → refresh_token requests for that user's tokens
	introspects int
}

type device struct {
	userCode string
	user     string // set once approved
	expiry   time.Time
}

type refreshToken struct {
	user    string
	revoked bool
}

type accessToken struct {
	user    string
	expiry  time.Time
	revoked bool
}

// Start runs an IdP until the test ends.
func Start(t testing.TB, o Options) *IdP {
	t.Helper()
	if o.ClientID == "" {
		o.ClientID = "mailsync-test"
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = time.Hour
	}
	if o.DeviceTTL == 0 {
		o.DeviceTTL = 10 * time.Minute
	}
	p := &IdP{
		opts: o, devices: map[string]*device{}, refresh: map[string]*refreshToken{},
		access: map[string]*accessToken{}, grants: map[string]int{}, refreshes: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device", p.handleDevice)
	mux.HandleFunc("POST /token", p.handleToken)
	mux.HandleFunc("POST /introspect", p.handleIntrospect)
	mux.HandleFunc("GET /introspect", p.handleIntrospect)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the base URL, http://127.0.0.1:port.
func (p *IdP) URL() string { return p.srv.URL }

// DeviceURL is the device authorization endpoint.
func (p *IdP) DeviceURL() string { return p.srv.URL + "/device" }

// TokenURL is the token endpoint.
func (p *IdP) TokenURL() string { return p.srv.URL + "/token" }

// IntrospectionURL is the introspection endpoint (POST token=..., or GET
// with ?token=...).
func (p *IdP) IntrospectionURL() string { return p.srv.URL + "/introspect" }

// ClientID returns the accepted client id.
func (p *IdP) ClientID() string { return p.opts.ClientID }

// ApproveAs makes the IdP approve every pending and future device code as
// user at its next poll, as if that user had entered the code.
func (p *IdP) ApproveAs(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.approveAs = user
}

// IssueRefreshToken mints a refresh token for user, as if obtained
// elsewhere (for import tests).
func (p *IdP) IssueRefreshToken(user string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.newRefreshLocked(user)
}

// IssueAccessToken mints an access token for user with the given lifetime.
func (p *IdP) IssueAccessToken(user string, ttl time.Duration) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.newAccessLocked(user, ttl)
}

// RevokeRefreshTokens revokes every refresh token of user, as a user
// removing the app's access or an admin resetting the password does.
func (p *IdP) RevokeRefreshTokens(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.refresh {
		if r.user == user {
			r.revoked = true
		}
	}
}

// ExpireAccessTokens makes every access token issued so far for user
// inactive; refresh tokens stay valid.
func (p *IdP) ExpireAccessTokens(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.access {
		if a.user == user {
			a.revoked = true
		}
	}
}

// Grants returns how many token requests of the grant type arrived (any
// outcome).
func (p *IdP) Grants(grantType string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.grants[grantType]
}

// RefreshRequests returns how many refresh_token requests presented a
// refresh token issued to user (any outcome, revoked ones included).
func (p *IdP) RefreshRequests(user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshes[user]
}

// Introspections returns how many introspection requests arrived.
func (p *IdP) Introspections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.introspects
}

// Secrets returns every token and device code the IdP issued.
func (p *IdP) Secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...)
}

func (p *IdP) handleDevice(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != p.opts.ClientID {
		writeError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	p.mu.Lock()
	code := p.randomLocked("dc")
	userCode := strings.ToUpper(randomString(4)) + "-" + strings.ToUpper(randomString(4))
	p.devices[code] = &device{userCode: userCode, expiry: time.Now().Add(p.opts.DeviceTTL)}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": code, "user_code": userCode,
		"verification_uri": p.srv.URL + "/activate", "expires_in": int(p.opts.DeviceTTL / time.Second),
		"interval": 1,
	})
}

// clientOK checks the client id and secret from the form or HTTP Basic.
func (p *IdP) clientOK(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == p.opts.ClientID && (p.opts.ClientSecret == "" || secret == p.opts.ClientSecret)
}

func (p *IdP) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	grant := r.PostForm.Get("grant_type")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.grants[grant]++
	var user, oldRefresh string
	switch grant {
	case GrantRefreshToken:
		oldRefresh = r.PostForm.Get("refresh_token")
		rt := p.refresh[oldRefresh]
		if rt != nil {
			p.refreshes[rt.user]++
		}
		if !p.clientOK(r) {
			writeError(w, http.StatusUnauthorized, "invalid_client")
			return
		}
		if rt == nil || rt.revoked {
			writeError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		user = rt.user
	case GrantDeviceCode:
		if !p.clientOK(r) {
			writeError(w, http.StatusUnauthorized, "invalid_client")
			return
		}
		d := p.devices[r.PostForm.Get("device_code")]
		switch {
		case d == nil:
			writeError(w, http.StatusBadRequest, "invalid_grant")
			return
		case time.Now().After(d.expiry):
			writeError(w, http.StatusBadRequest, "expired_token")
			return
		case d.user == "" && p.approveAs != "":
			d.user = p.approveAs
		}
		if d.user == "" {
			writeError(w, http.StatusBadRequest, "authorization_pending")
			return
		}
		user = d.user
		delete(p.devices, r.PostForm.Get("device_code"))
	case GrantClientCredentials:
		if p.opts.ClientSecret == "" || !p.clientOK(r) {
			writeError(w, http.StatusUnauthorized, "invalid_client")
			return
		}
		user = p.opts.AppUser
		at := p.newAccessLocked(user, p.opts.AccessTTL)
		writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(p.opts.AccessTTL / time.Second)})
		return
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	resp := map[string]any{
		"access_token": p.newAccessLocked(user, p.opts.AccessTTL), "token_type": "Bearer",
		"expires_in": int(p.opts.AccessTTL / time.Second), "scope": r.PostForm.Get("scope"),
	}
	switch {
	case grant == GrantDeviceCode:
		resp["refresh_token"] = p.newRefreshLocked(user)
	case !p.opts.NoRotation:
		p.refresh[oldRefresh].revoked = true
		resp["refresh_token"] = p.newRefreshLocked(user)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *IdP) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	tok := r.Form.Get("token")
	if tok == "" {
		tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	p.mu.Lock()
	p.introspects++
	a := p.access[tok]
	p.mu.Unlock()
	if a == nil || a.revoked || time.Now().After(a.expiry) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "username": a.user, "token_type": "Bearer"})
}

func (p *IdP) newAccessLocked(user string, ttl time.Duration) string {
	tok := p.randomLocked("at")
	p.access[tok] = &accessToken{user: user, expiry: time.Now().Add(ttl)}
	return tok
}

func (p *IdP) newRefreshLocked(user string) string {
	tok := p.randomLocked("rt")
	p.refresh[tok] = &refreshToken{user: user}
	return tok
}

// randomLocked returns a new secret and remembers it for Secrets.
func (p *IdP) randomLocked(prefix string) string {
	s := prefix + "_" + randomString(32)
	p.issued = append(p.issued, s)
	return s
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func writeError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
