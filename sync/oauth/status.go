package oauth

import (
	"errors"
	"time"

	"github.com/mailsync/mailsync/config"
)

// Token states, as `mailsync auth status` shows them.
const (
	// StateOK: a token is stored and refreshes work (or have not been
	// needed yet).
	StateOK = "ok"
	// StateExpiring: the refresh token expires within ExpiringWithin, or
	// (running daemon) refreshes are failing and are being retried.
	StateExpiring = "expiring"
	// StateReauthNeeded: the refresh token was revoked or expired.
	StateReauthNeeded = "reauth needed"
	// StateMissing: no token was ever stored: run `mailsync auth login`.
	StateMissing = "missing"
	// StateUnreadable: a token is stored but the configured key cannot
	// decrypt it.
	StateUnreadable = "unreadable"
	// StateClientRejected: (running daemon) the token endpoint refuses
	// the client id or secret.
	StateClientRejected = "client rejected"
)

// ExpiringWithin is how close a known refresh-token expiry must be for
// StateExpiring.
const ExpiringWithin = 7 * 24 * time.Hour

// TokenStatus describes an account's stored token, never its values.
type TokenStatus struct {
	Account  string `json:"account"`
	Provider string `json:"provider"`
	Grant    string `json:"grant"`
	State    string `json:"state"`
	// AccessExpiry is when the current access token expires.
	AccessExpiry time.Time `json:"access_token_expiry,omitzero"`
	// LastRefresh is when a token was last obtained (login or refresh).
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// RefreshIssued is when the current refresh token was received; a
	// provider that rotates tokens renews it at each refresh.
	RefreshIssued time.Time `json:"refresh_token_issued,omitzero"`
	// RefreshAge is now minus RefreshIssued, in whole seconds in JSON.
	RefreshAge time.Duration `json:"-"`
	// RefreshAgeSeconds mirrors RefreshAge for JSON.
	RefreshAgeSeconds int64 `json:"refresh_token_age_seconds,omitempty"`
	// RefreshExpiry is when the refresh token expires, when the provider
	// said so.
	RefreshExpiry time.Time `json:"refresh_token_expiry,omitzero"`
	// Detail explains a state other than ok.
	Detail string `json:"detail,omitempty"`
}

// statusOf describes rec (nil: none stored; loadErr: unreadable) for acct.
func statusOf(acct *config.Account, rec *record, loadErr error, now time.Time) TokenStatus {
	s := TokenStatus{Account: acct.ID, Provider: acct.OAuth2.Provider, Grant: acct.OAuth2.EffectiveGrant(), State: StateOK}
	appOnly := s.Grant == config.GrantClientCredentials
	switch {
	case loadErr != nil:
		s.State, s.Detail = StateUnreadable, loadErr.Error()
		if !errors.Is(loadErr, ErrUnreadable) {
			s.State = StateOK // a store error says nothing about the token
		}
		return s
	case rec == nil && appOnly:
		s.Detail = "app-only access: tokens are fetched when needed"
		return s
	case rec == nil:
		s.State, s.Detail = StateMissing, "run: mailsync auth login --account "+acct.ID
		return s
	}
	s.AccessExpiry, s.LastRefresh = rec.Expiry, rec.LastRefresh
	if !appOnly {
		s.RefreshIssued, s.RefreshExpiry = rec.RefreshIssued, rec.RefreshExpiry
		if !rec.RefreshIssued.IsZero() {
			s.RefreshAge = now.Sub(rec.RefreshIssued).Truncate(time.Second)
			s.RefreshAgeSeconds = int64(s.RefreshAge / time.Second)
		}
	}
	same := rec.Client == clientID(acct)
	switch {
	case rec.Reauth != "" && same:
		s.State, s.Detail = StateReauthNeeded, rec.Reauth+"; run: mailsync auth login --account "+acct.ID
	case !appOnly && !rec.RefreshExpiry.IsZero() && rec.RefreshExpiry.Sub(now) < ExpiringWithin:
		s.State, s.Detail = StateExpiring, "the refresh token expires soon; run: mailsync auth login --account "+acct.ID
	case !same:
		s.Detail = "stored for another client_id or token_url; if logins fail, run: mailsync auth login --account " + acct.ID
	}
	return s
}

// Status describes the stored token of an oauth2 account, reading the
// state file (for `mailsync auth status` while the daemon is stopped).
func (v *Vault) Status(acct *config.Account, now time.Time) TokenStatus {
	rec, err := v.load(acct.ID)
	return statusOf(acct, rec, err, now)
}
