package salesforcetest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	stdsync "sync"
	"testing"
	"time"
)

// Login is a fake of Salesforce's login server (login.salesforce.com's
// /services/oauth2/authorize and /token, which the REST API document does
// not cover), held to the rules of Salesforce's OAuth guide: the web
// server flow with PKCE (S256), the refresh token flow, and the JWT bearer
// flow (an RS256 assertion from the connected app's certificate, iss =
// consumer key, sub = a pre-authorized user, aud = the login host, exp
// within 3 minutes). A token it issues is the one the API fake accepts.
// Violations fail the test.
type Login struct {
	URL string // e.g. http://127.0.0.1:PORT; endpoints below /services/oauth2
	api *Server
	t   testing.TB

	mu        stdsync.Mutex
	codes     map[string]codeGrant
	refresh   string
	revoked   bool
	rotate    bool
	publicKey *rsa.PublicKey
	users     map[string]bool // pre-authorized for the JWT flow
	grants    map[string]int  // grant_type -> successful requests
}

type codeGrant struct{ redirect, challenge string }

// Connected app credentials the login fake accepts.
const (
	ConsumerKey    = "3MVG9fake.consumer.key"
	ConsumerSecret = "fake-consumer-secret"
)

// StartLogin runs the login fake for api on 127.0.0.1.
func StartLogin(t testing.TB, api *Server) *Login {
	t.Helper()
	l := &Login{api: api, t: t, codes: map[string]codeGrant{}, users: map[string]bool{}, grants: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(srv.Close)
	l.URL = srv.URL
	return l
}

// TokenURL and AuthorizeURL are the connected app's endpoints.
func (l *Login) TokenURL() string     { return l.URL + "/services/oauth2/token" }
func (l *Login) AuthorizeURL() string { return l.URL + "/services/oauth2/authorize" }

// TrustCertificate registers the connected app's certificate (PEM of the
// public key, or of a certificate) and pre-authorizes user for JWT.
func (l *Login) TrustCertificate(pubPEM []byte, user string) {
	b, _ := pem.Decode(pubPEM)
	if b == nil {
		l.t.Fatal("salesforcetest: no PEM block in the certificate")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		l.t.Fatalf("salesforcetest: public key: %v", err)
	}
	l.mu.Lock()
	l.publicKey, l.users[user] = k.(*rsa.PublicKey), true
	l.mu.Unlock()
}

// Revoke invalidates the refresh token and stops JWT grants, as an admin
// revoking the app's access does.
func (l *Login) Revoke() { l.mu.Lock(); l.revoked = true; l.mu.Unlock() }

// Unrevoke lets the app in again (JWT grants; a refresh token stays dead).
func (l *Login) Unrevoke() { l.mu.Lock(); l.revoked = false; l.refresh = "dead"; l.mu.Unlock() }

// RotateRefresh makes the next refresh answer carry a new refresh token
// and the old one stop working (refresh token rotation).
func (l *Login) RotateRefresh() { l.mu.Lock(); l.rotate = true; l.mu.Unlock() }

// Grants counts successful token requests by grant_type.
func (l *Login) Grants(grantType string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.grants[grantType]
}

func (l *Login) violate(format string, args ...any) {
	l.api.Validator.Report("login: "+format, args...)
}

func (l *Login) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/services/oauth2/authorize":
		l.authorize(w, r)
	case "/services/oauth2/token":
		l.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

// authorize approves at once, as a user who signs in and allows access.
func (l *Login) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("response_type") != "code":
		l.violate("authorize: response_type %q, want code", q.Get("response_type"))
	case q.Get("client_id") != ConsumerKey:
		l.violate("authorize: unknown client_id %q", q.Get("client_id"))
	case err != nil || redirect.Host == "":
		l.violate("authorize: redirect_uri %q is not absolute", q.Get("redirect_uri"))
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43:
		l.violate("authorize: PKCE S256 challenge missing")
	case !strings.Contains(" "+q.Get("scope")+" ", " refresh_token "):
		l.violate("authorize: scope %q lacks refresh_token: no refresh token would be issued", q.Get("scope"))
	}
	if err != nil || redirect.Host == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	code := fmt.Sprintf("aPrx%d", time.Now().UnixNano())
	l.codes[code] = codeGrant{redirect: redirect.String(), challenge: q.Get("code_challenge")}
	l.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (l *Login) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		l.violate("token: %s without a form", r.Method)
		oauthError(w, 400, "invalid_request", "bad request")
		return
	}
	f := r.PostForm
	l.mu.Lock()
	defer l.mu.Unlock()
	gt := f.Get("grant_type")
	switch gt {
	case "authorization_code":
		g, ok := l.codes[f.Get("code")]
		delete(l.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case f.Get("client_id") != ConsumerKey || f.Get("client_secret") != ConsumerSecret:
			oauthError(w, 400, "invalid_client", "invalid client credentials")
			return
		case !ok || g.redirect != f.Get("redirect_uri"):
			oauthError(w, 400, "invalid_grant", "invalid authorization code")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			oauthError(w, 400, "invalid_grant", "invalid code verifier")
			return
		}
		l.refresh, l.revoked = fmt.Sprintf("5Aep%d", time.Now().UnixNano()), false
		l.issue(w, gt, true)
	case "refresh_token":
		if l.revoked || f.Get("refresh_token") != l.refresh || f.Get("client_id") != ConsumerKey {
			oauthError(w, 400, "invalid_grant", "expired access/refresh token")
			return
		}
		rotated := l.rotate
		if rotated {
			l.refresh, l.rotate = fmt.Sprintf("5Aep%d", time.Now().UnixNano()), false
		}
		l.issue(w, gt, rotated)
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		if err := l.checkAssertion(f.Get("assertion")); err != nil {
			oauthError(w, 400, "invalid_grant", err.Error())
			return
		}
		l.issue(w, gt, false)
	default:
		l.violate("token: grant_type %q", gt)
		oauthError(w, 400, "unsupported_grant_type", "grant type not supported")
	}
}

// checkAssertion verifies a JWT bearer assertion as Salesforce does: an
// RS256 signature by the registered certificate's key, then the claims.
func (l *Login) checkAssertion(a string) error {
	if l.publicKey == nil || l.revoked {
		return fmt.Errorf("user hasn't approved this consumer")
	}
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		return fmt.Errorf("invalid assertion")
	}
	var h struct{ Alg string }
	var cs struct {
		Iss, Sub, Aud string
		Exp           int64
	}
	hdr, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	claims, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hdr, &h) != nil || json.Unmarshal(claims, &cs) != nil {
		return fmt.Errorf("invalid assertion")
	}
	if h.Alg != "RS256" {
		l.violate("jwt: alg %q, want RS256", h.Alg)
		return fmt.Errorf("invalid assertion")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(l.publicKey, crypto.SHA256, sum[:], sig) != nil {
		return fmt.Errorf("invalid assertion")
	}
	now := time.Now().Unix()
	switch {
	case cs.Iss != ConsumerKey:
		return fmt.Errorf("invalid client credentials")
	case !l.users[cs.Sub]:
		return fmt.Errorf("user hasn't approved this consumer")
	case cs.Aud != l.URL && cs.Aud != "https://login.salesforce.com" && cs.Aud != "https://test.salesforce.com":
		l.violate("jwt: aud %q is not the login host", cs.Aud)
		return fmt.Errorf("audience is invalid")
	case cs.Exp < now || cs.Exp > now+180:
		l.violate("jwt: exp %d s from now, want within 3 minutes", cs.Exp-now)
		return fmt.Errorf("expired authorization code")
	}
	return nil
}

// issue answers with a new access token, which the API fake then accepts.
func (l *Login) issue(w http.ResponseWriter, grant string, withRefresh bool) {
	tok := fmt.Sprintf("00Dfake!login-%d", time.Now().UnixNano())
	l.api.SetToken(tok)
	l.grants[grant]++
	body := map[string]any{"access_token": tok, "instance_url": l.api.URL, "id": l.URL + "/id/00D/005",
		"token_type": "Bearer", "issued_at": fmt.Sprint(time.Now().UnixMilli()), "signature": "fake", "scope": "api refresh_token"}
	if withRefresh {
		body["refresh_token"] = l.refresh
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
