package oauth

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"golang.org/x/oauth2"
)

// sinkID is the vault id of a CRM adapter's grant. Account ids cannot
// hold ':' (config's id pattern), so it never names an account.
func sinkID(name string) string { return "sink:" + name }

// SinkTokens is the sink.TokenStore of one CRM adapter: its grant sealed
// in the state file like an account's.
type SinkTokens struct {
	v      *Vault
	name   string
	id     string
	client string
	now    func() time.Time
}

// Sink returns the token store of the adapter name whose app is clientID
// at tokenURL; a grant stored for another client reads as none.
func (v *Vault) Sink(name, clientID, tokenURL string) *SinkTokens {
	h := sha256.Sum256([]byte(clientID + "\x00" + tokenURL))
	return &SinkTokens{v: v, name: name, id: sinkID(name), client: hex.EncodeToString(h[:8]), now: time.Now}
}

// Token implements sink.TokenStore.
func (s *SinkTokens) Token() (*oauth2.Token, error) {
	r, err := s.v.load(s.id)
	if err != nil || r == nil || r.Client != s.client || r.Refresh == "" {
		return nil, err
	}
	return &oauth2.Token{AccessToken: r.Access, TokenType: r.TokenType, RefreshToken: r.Refresh, Expiry: r.Expiry}, nil
}

// SaveToken implements sink.TokenStore. A token without a refresh token
// keeps the stored one (most CRMs do not rotate it).
func (s *SinkTokens) SaveToken(t *oauth2.Token) error {
	prev, err := s.v.load(s.id)
	if err != nil {
		prev = nil // unreadable (another key): replaced by the new grant
	}
	if prev != nil && prev.Client != s.client {
		prev = nil
	}
	now := s.now()
	return s.v.save(s.id, prev.withGrant(&Grant{tok: t, obtained: now}, s.client, now))
}

// NeedsReauth implements sink.TokenStore.
func (s *SinkTokens) NeedsReauth(reason string) error {
	r, err := s.v.load(s.id)
	if err != nil || r == nil {
		return err
	}
	if reason == "" {
		reason = "refused"
	}
	r.Reauth = reason
	return s.v.save(s.id, r)
}

// SinkStatus is what `mailsync auth status` shows of a CRM adapter's
// grant, never a token.
func (s *SinkTokens) Status() TokenStatus {
	st := TokenStatus{Account: s.id, Provider: s.name, Grant: "authorization_code", State: StateOK}
	r, err := s.v.load(s.id)
	switch {
	case err != nil:
		st.State, st.Detail = StateUnreadable, err.Error()
	case r == nil || r.Client != s.client || r.Refresh == "":
		st.State, st.Detail = StateMissing, "run mailsync auth login --sink"
	case r.Reauth != "":
		st.State, st.Detail = StateReauthNeeded, r.Reauth+"; run mailsync auth login --sink"
	}
	if r != nil {
		st.AccessExpiry, st.LastRefresh, st.RefreshIssued = r.Expiry, r.LastRefresh, r.RefreshIssued
		if !r.RefreshIssued.IsZero() {
			st.RefreshAge = s.now().Sub(r.RefreshIssued)
			st.RefreshAgeSeconds = int64(st.RefreshAge / time.Second)
		}
	}
	return st
}
