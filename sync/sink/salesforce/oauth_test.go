package salesforce_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/mailsync/mailsync/sync/oauth"
	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/salesforce"
	"github.com/mailsync/mailsync/sync/sink/salesforce/salesforcetest"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

// memTokens is a sink.TokenStore in memory.
type memTokens struct {
	mu     stdsync.Mutex
	tok    *oauth2.Token
	reauth string
	saves  int
}

func (m *memTokens) Token() (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tok, nil
}
func (m *memTokens) SaveToken(t *oauth2.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tok, m.reauth, m.saves = t, "", m.saves+1
	return nil
}
func (m *memTokens) NeedsReauth(r string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reauth = r
	return nil
}

// TestJWTBearer: with the JWT bearer flow the adapter signs an assertion
// the login fake verifies (RS256, iss, sub, aud, exp within 3 minutes),
// delivers with the token it gets, and reports re-authentication needed
// once the app's access is revoked.
func TestJWTBearer(t *testing.T) {
	fake := salesforcetest.Start(t)
	login := salesforcetest.StartLogin(t, fake)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	login.TrustCertificate(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "integration@acme.example")
	keyFile := filepath.Join(t.TempDir(), "app.key")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	s, err := sink.Open(t.Context(), "salesforce", map[string]any{
		"instance_url": fake.URL, "requests_per_second": 500,
		"oauth2": map[string]any{"token_url": login.TokenURL(), "audience": login.URL, "client_id": salesforcetest.ConsumerKey,
			"username": "integration@acme.example", "private_key_file": keyFile},
	}, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if lc, err := sink.Login("salesforce", map[string]any{"instance_url": fake.URL, "oauth2": map[string]any{"client_id": "x", "username": "u", "private_key_file": keyFile}}); err != nil || lc != nil {
		t.Errorf("Login() for the JWT flow = %v, %v; want nothing to sign in", lc, err)
	}
	if _, err := sink.DeliverOne(t.Context(), s, sinktest.Message("jwt-1", 512)); err != nil {
		t.Fatalf("with the JWT bearer flow: %v", err)
	}
	if n := login.Grants("urn:ietf:params:oauth:grant-type:jwt-bearer"); n != 1 {
		t.Errorf("%d JWT grants, want 1", n)
	}
	login.Revoke()
	fake.SetToken("00Dfake!expired")
	if _, err := sink.DeliverOne(t.Context(), s, sinktest.Message("jwt-2", 512)); !errors.Is(err, salesforce.ErrReauth) || !strings.Contains(err.Error(), "pre-authorized") {
		t.Errorf("after the revocation: %v, want ErrReauth that says what to check", err)
	}
	if h := s.(sink.Health).Health(); !strings.Contains(h, "re-authentication needed") {
		t.Errorf("Health() = %q", h)
	}
}

// TestSignInThenStoredGrant: the sign-in of `mailsync auth login --sink`
// (authorization code with PKCE through a loopback redirect) yields a
// grant that the adapter uses from its token store, keeps when the
// refresh token rotates, and marks when Salesforce refuses it.
func TestSignInThenStoredGrant(t *testing.T) {
	fake := salesforcetest.Start(t)
	login := salesforcetest.StartLogin(t, fake)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte(salesforcetest.ConsumerSecret), 0o600)
	section := map[string]any{
		"instance_url": fake.URL, "requests_per_second": 500,
		"oauth2": map[string]any{"token_url": login.TokenURL(), "client_id": salesforcetest.ConsumerKey,
			"client_secret_file": secret, "redirect_url": "http://127.0.0.1:" + freePort(t) + "/callback"},
	}
	lc, err := sink.Login("salesforce", section)
	if err != nil || lc == nil || !lc.Stored || !lc.PKCE {
		t.Fatalf("Login() = %+v, %v", lc, err)
	}
	tok, err := oauth.LoopbackLogin(t.Context(), lc.OAuth2, lc.PKCE, nil, func(u string) {
		go func() { // the browser: follow the sign-in to the loopback redirect
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
			}
		}()
	})
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("sign-in: %v", err)
	}
	store := &memTokens{tok: tok}
	if _, err := sink.Open(t.Context(), "salesforce", section, sink.Deps{}); err == nil || !strings.Contains(err.Error(), "tokens.key_file") {
		t.Errorf("without a token store: %v, want the key to set", err)
	}
	s, err := sink.Open(t.Context(), "salesforce", section, sink.Deps{Tokens: store})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	login.RotateRefresh()
	fake.SetToken("00Dfake!expired")
	if _, err := sink.DeliverOne(t.Context(), s, sinktest.Message("st-1", 512)); err != nil {
		t.Fatalf("with the stored grant: %v", err)
	}
	if store.tok.RefreshToken == tok.RefreshToken || store.saves == 0 {
		t.Errorf("the rotated refresh token was not stored")
	}
	login.Revoke()
	fake.SetToken("00Dfake!expired-again")
	if _, err := sink.DeliverOne(t.Context(), s, sinktest.Message("st-2", 512)); !errors.Is(err, salesforce.ErrReauth) || !strings.Contains(err.Error(), "mailsync auth login --sink") {
		t.Errorf("after the revocation: %v", err)
	}
	if store.reauth == "" {
		t.Errorf("the refusal was not recorded in the token store")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}
