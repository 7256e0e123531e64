package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// XOAuth2 is the SASL mechanism name of Google's and Microsoft's XOAUTH2.
const XOAuth2 = "XOAUTH2"

// maxChallenge bounds the error challenge we parse; real ones are under
// 200 bytes.
const maxChallenge = 4096

// ErrBadCredentialChars is returned when a username or token is empty or
// contains a byte that would break the SASL message framing (%x01, CR, LF,
// NUL; for OAUTHBEARER also ',' and '=' in the username).
var ErrBadCredentialChars = errors.New("username or token contains a control character")

// ChallengeError is the JSON error a server sends as a SASL challenge
// when it refuses an OAuth2 token (XOAUTH2 as Google and Microsoft
// document it; OAUTHBEARER per RFC 7628 §3.2.2). It holds no secret.
type ChallengeError struct {
	Mechanism string
	Status    string `json:"status"`
	Schemes   string `json:"schemes"`
	Scope     string `json:"scope"`
}

// Error names the mechanism and the server's status.
func (e *ChallengeError) Error() string {
	s := fmt.Sprintf("%s: server refused the token (status %q", e.Mechanism, e.Status)
	if e.Scope != "" {
		s += fmt.Sprintf(", scope %q", e.Scope)
	}
	return s + ")"
}

// ParseChallenge decodes a server's error challenge. A challenge that is
// not a JSON object still means refusal; its status is then "unparsed".
func ParseChallenge(mech string, challenge []byte) *ChallengeError {
	e := &ChallengeError{Mechanism: mech}
	if len(challenge) > maxChallenge || json.Unmarshal(challenge, e) != nil {
		*e = ChallengeError{Mechanism: mech, Status: "unparsed"}
	}
	e.Status, e.Schemes, e.Scope = clean(e.Status), clean(e.Schemes), clean(e.Scope)
	return e
}

// clean keeps server-chosen strings printable and short before they reach
// an error message or a log line.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// XOAuth2Message builds the XOAUTH2 initial client response:
// "user=" user %x01 "auth=Bearer " token %x01 %x01.
func XOAuth2Message(username, token string) ([]byte, error) {
	if badChars(username) || badChars(token) || username == "" || token == "" {
		return nil, ErrBadCredentialChars
	}
	b := make([]byte, 0, len(username)+len(token)+20)
	b = append(b, "user="...)
	b = append(b, username...)
	b = append(b, "\x01auth=Bearer "...)
	b = append(b, token...)
	b = append(b, "\x01\x01"...)
	return b, nil
}

func badChars(s string) bool { return strings.ContainsAny(s, "\x00\x01\r\n") }

// refusingClient is a sasl.Client that remembers an error challenge.
type refusingClient interface {
	sasl.Client
	// Refused returns the error challenge the server sent, or nil.
	Refused() *ChallengeError
}

// xoauth2Client implements XOAUTH2 for go-imap's Authenticate.
type xoauth2Client struct {
	username, token string
	refused         *ChallengeError
}

// NewXOAuth2Client returns a sasl.Client for XOAUTH2.
//
// On an error challenge the client acknowledges with %x01 rather than the
// empty response the providers document: go-imap (v2 beta.8) encodes an
// empty continuation as "=", which Dovecot answers with BAD (go-imap issue
// #760), while %x01 (RFC 7628 §3.2.3's acknowledgement) gets the tagged NO
// from Dovecot, and servers end a refused exchange whatever the client
// sends. A second challenge aborts.
func NewXOAuth2Client(username, token string) sasl.Client {
	return &xoauth2Client{username: username, token: token}
}

// Start implements sasl.Client.
func (c *xoauth2Client) Start() (string, []byte, error) {
	ir, err := XOAuth2Message(c.username, c.token)
	if err != nil {
		return "", nil, err
	}
	return XOAuth2, ir, nil
}

// Next implements sasl.Client.
func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	return answerChallenge(XOAuth2, &c.refused, challenge)
}

// Refused implements refusingClient.
func (c *xoauth2Client) Refused() *ChallengeError { return c.refused }

// String keeps the token out of anything that prints the client.
func (c *xoauth2Client) String() string { return "XOAUTH2 client" }

// answerChallenge handles the one challenge an OAuth2 mechanism may get:
// the server's JSON error, answered with %x01 so the server finishes with
// its tagged response.
func answerChallenge(mech string, refused **ChallengeError, challenge []byte) ([]byte, error) {
	if *refused != nil {
		return nil, fmt.Errorf("%s: unexpected second challenge after %w", mech, *refused)
	}
	*refused = ParseChallenge(mech, challenge)
	return []byte{0x01}, nil
}

// oauthBearerClient wraps go-sasl's OAUTHBEARER client, whose Next returns
// an error without answering: go-imap would then leave the exchange
// half-open. RFC 7628 §3.2.3 says the client answers %x01.
type oauthBearerClient struct {
	sasl.Client
	username, token string
	refused         *ChallengeError
}

// NewOAuthBearerClient returns a sasl.Client for OAUTHBEARER (RFC 7628).
// host and port are sent as the RFC's optional host= and port= fields
// when set.
func NewOAuthBearerClient(username, token, host string, port int) sasl.Client {
	return &oauthBearerClient{
		Client: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
			Username: username, Token: token, Host: host, Port: port,
		}),
		username: username, token: token,
	}
}

// Start implements sasl.Client. go-sasl puts the username into the GS2
// header unescaped, so a ',' or '=' (which RFC 5801 §4 would need as =2C,
// =3D) is refused rather than sent malformed.
func (c *oauthBearerClient) Start() (string, []byte, error) {
	if c.username == "" || c.token == "" || badChars(c.username) || badChars(c.token) ||
		strings.ContainsAny(c.username, ",=") {
		return "", nil, ErrBadCredentialChars
	}
	return c.Client.Start()
}

// Next implements sasl.Client.
func (c *oauthBearerClient) Next(challenge []byte) ([]byte, error) {
	return answerChallenge(sasl.OAuthBearer, &c.refused, challenge)
}

// Refused implements refusingClient.
func (c *oauthBearerClient) Refused() *ChallengeError { return c.refused }

// String keeps the token out of anything that prints the client.
func (c *oauthBearerClient) String() string { return "OAUTHBEARER client" }
