package oauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
)

// Sealed record formats, the first byte of a stored value.
const (
	formatPlain  = 0x00 // JSON, only with tokens.allow_plaintext
	formatGCMv1  = 0x01 // AES-256-GCM, see seal
	keyIDLen     = 4
	gcmHeaderLen = 1 + keyIDLen
)

// kvPrefix starts the state file key of an account's token record.
const kvPrefix = "oauth2/token/"

// record is what the state file keeps per account, sealed as a whole.
type record struct {
	// Client identifies the client configuration the tokens belong to,
	// so a persisted "reauth needed" is dropped when it changes.
	Client        string    `json:"client"`
	Access        string    `json:"access,omitempty"`
	TokenType     string    `json:"token_type,omitempty"`
	Expiry        time.Time `json:"expiry,omitzero"`
	Obtained      time.Time `json:"obtained,omitzero"` // when Access was issued
	Refresh       string    `json:"refresh,omitempty"`
	RefreshIssued time.Time `json:"refresh_issued,omitzero"`
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
	LastRefresh   time.Time `json:"last_refresh,omitzero"`
	// Reauth, when set, says why the refresh token stopped working.
	Reauth string `json:"reauth,omitempty"`
}

// withGrant returns a copy of r updated from a token response obtained at
// now. A new refresh token value restarts its age.
func (r *record) withGrant(g *Grant, client string, now time.Time) *record {
	n := &record{}
	if r != nil {
		*n = *r
	}
	n.Client = client
	n.Access, n.TokenType, n.Expiry, n.Obtained = g.tok.AccessToken, g.tok.TokenType, g.tok.Expiry, now
	if g.tok.ExpiresIn > 0 {
		// On the caller's clock, which tests control.
		n.Expiry = now.Add(time.Duration(g.tok.ExpiresIn) * time.Second)
	}
	if g.tok.RefreshToken != "" && g.tok.RefreshToken != n.Refresh {
		n.Refresh, n.RefreshIssued, n.RefreshExpiry = g.tok.RefreshToken, now, time.Time{}
	}
	if e := g.refreshExpiry(); !e.IsZero() {
		n.RefreshExpiry = e
	}
	n.LastRefresh, n.Reauth = now, ""
	return n
}

// Vault seals token records into the state file: AES-256-GCM with a
// random nonce, a key id so a wrong key is named as such, and the account
// id as additional data so a record copied to another account fails.
type Vault struct {
	st    *store.Store
	aead  cipher.AEAD // nil: plaintext
	keyID [keyIDLen]byte
}

// OpenVault returns the vault of the state file st, keyed per the tokens
// section. Without a key it fails with ErrNoKey unless allow_plaintext.
func OpenVault(st *store.Store, t *config.Tokens) (*Vault, error) {
	key, err := t.Key()
	if err != nil {
		return nil, err
	}
	if key == nil && !t.AllowPlaintext {
		return nil, ErrNoKey
	}
	return NewVault(st, key)
}

// NewVault returns a vault over st sealing with key (32 bytes), or storing
// plaintext when key is nil. A nil st reads as empty (no state file yet).
func NewVault(st *store.Store, key []byte) (*Vault, error) {
	v := &Vault{st: st}
	if key == nil {
		return v, nil
	}
	if len(key) != config.TokenKeySize {
		return nil, fmt.Errorf("token key is %d bytes, want %d", len(key), config.TokenKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if v.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	v.keyID = keyID(key)
	return v, nil
}

// Plaintext reports whether records are stored unencrypted.
func (v *Vault) Plaintext() bool { return v.aead == nil }

// keyID names a key without revealing it: a hash under its own label.
func keyID(key []byte) [keyIDLen]byte {
	h := sha256.New()
	h.Write([]byte("mailsync oauth2 token key id\x00"))
	h.Write(key)
	var id [keyIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

func aad(account string, header []byte) []byte {
	b := append([]byte("mailsync/oauth2/v1\x00"), account...)
	b = append(b, 0)
	return append(b, header...)
}

// seal encodes r for account: format byte, key id, 12-byte nonce, then
// the GCM ciphertext and tag.
func (v *Vault) seal(account string, r *record) ([]byte, error) {
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode token record: %w", err)
	}
	if v.aead == nil {
		return append([]byte{formatPlain}, plain...), nil
	}
	out := make([]byte, gcmHeaderLen+v.aead.NonceSize(), gcmHeaderLen+v.aead.NonceSize()+len(plain)+v.aead.Overhead())
	out[0] = formatGCMv1
	copy(out[1:gcmHeaderLen], v.keyID[:])
	nonce := out[gcmHeaderLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("token nonce: %w", err)
	}
	return v.aead.Seal(out, nonce, plain, aad(account, out[:gcmHeaderLen])), nil
}

// open decodes a sealed record. Errors wrap ErrUnreadable and say why
// (another key, tampered, plaintext without permission) without content.
func (v *Vault) open(account string, b []byte) (*record, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty record", ErrUnreadable)
	}
	var plain []byte
	switch b[0] {
	case formatPlain:
		// Readable with or without a key: a key added later re-seals
		// the record at the next save.
		plain = b[1:]
	case formatGCMv1:
		if v.aead == nil {
			return nil, fmt.Errorf("%w: it is encrypted and no tokens.key_file or tokens.key_credential is configured", ErrUnreadable)
		}
		ns := v.aead.NonceSize()
		if len(b) < gcmHeaderLen+ns+v.aead.Overhead() {
			return nil, fmt.Errorf("%w: record truncated", ErrUnreadable)
		}
		if id := b[1:gcmHeaderLen]; string(id) != string(v.keyID[:]) {
			return nil, fmt.Errorf("%w: it was encrypted with another key (key id %s, the configured key is %s)",
				ErrUnreadable, hex.EncodeToString(id), hex.EncodeToString(v.keyID[:]))
		}
		var err error
		plain, err = v.aead.Open(nil, b[gcmHeaderLen:gcmHeaderLen+ns], b[gcmHeaderLen+ns:], aad(account, b[:gcmHeaderLen]))
		if err != nil {
			return nil, fmt.Errorf("%w: authentication failed (the record was altered or belongs to another account)", ErrUnreadable)
		}
	default:
		return nil, fmt.Errorf("%w: unknown format %#x (written by a newer mailsync?)", ErrUnreadable, b[0])
	}
	var r record
	if err := json.Unmarshal(plain, &r); err != nil {
		return nil, fmt.Errorf("%w: malformed record", ErrUnreadable)
	}
	return &r, nil
}

// load returns the account's record, nil if none is stored.
func (v *Vault) load(account string) (*record, error) {
	if v.st == nil {
		return nil, nil // no state file yet
	}
	var raw []byte
	err := v.st.View(func(tx *store.Tx) error {
		var err error
		raw, _, err = tx.GetKV(kvPrefix + account)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load OAuth2 token of account %s: %w", account, err)
	}
	if raw == nil {
		return nil, nil
	}
	return v.open(account, raw)
}

// save replaces the account's record in one transaction: a rotated
// refresh token is either stored whole or not at all.
func (v *Vault) save(account string, r *record) error {
	b, err := v.seal(account, r)
	if err != nil {
		return err
	}
	err = v.st.Update(func(tx *store.Tx) error { return tx.PutKV(kvPrefix+account, b) })
	if err != nil {
		return fmt.Errorf("save OAuth2 token of account %s: %w", account, err)
	}
	return nil
}

// Login stores a grant from `mailsync auth login` for acct, replacing
// whatever was there and clearing "reauth needed". A grant without a
// refresh token is refused for the refresh_token grant: the daemon could
// not renew it.
func (v *Vault) Login(acct *config.Account, g *Grant) error {
	if acct.OAuth2.EffectiveGrant() == config.GrantRefreshToken && !g.HasRefreshToken() {
		return errors.New("the identity provider returned no refresh token (Microsoft needs the offline_access scope; Google needs a client of type \"TVs and Limited Input devices\" or \"Desktop\")")
	}
	return v.save(acct.ID, (*record)(nil).withGrant(g, clientID(acct), g.obtained))
}

// clientID fingerprints the client configuration of acct.
func clientID(acct *config.Account) string {
	_, tokenURL, _ := acct.OAuth2.Endpoints()
	h := sha256.Sum256([]byte(acct.OAuth2.ClientID + "\x00" + tokenURL))
	return hex.EncodeToString(h[:8])
}
