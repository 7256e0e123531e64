package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Secret is a webhook signing key. Its bytes never leave the package except
// through Sign: every way of printing, logging or encoding it shows
// "[redacted]".
type Secret struct{ b []byte }

const redacted = "[redacted]"

// secretPrefix marks a Standard Webhooks secret: base64 after the prefix.
const secretPrefix = "whsec_"

// ParseSecret reads a secret in the Standard Webhooks form "whsec_<base64>"
// (the key is the decoded bytes) or, failing that prefix, as the raw bytes
// of s. Surrounding whitespace (a file's trailing newline) is dropped. An
// empty secret is refused. Errors never contain the secret.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, secretPrefix); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Secret{}, errors.New("secret has the whsec_ prefix but is not valid base64 after it")
		}
		if len(b) == 0 {
			return Secret{}, errors.New("secret is empty")
		}
		return Secret{b: b}, nil
	}
	if s == "" {
		return Secret{}, errors.New("secret is empty")
	}
	return Secret{b: []byte(s)}, nil
}

// IsZero reports whether no secret is set.
func (s Secret) IsZero() bool { return len(s.b) == 0 }

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb, so %x or %#v cannot leak it.
func (Secret) Format(f fmt.State, _ rune) { f.Write([]byte(redacted)) }

// LogValue keeps the secret out of slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]", for JSON and YAML dumps of a config.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Sign returns the Standard Webhooks signature header value for one
// request: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body".
func Sign(secret Secret, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, secret.b)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header, a webhook-signature value, holds a valid
// v1 signature of the request. The header may list several space-separated
// signatures (during key rotation); one valid one is enough. It does not
// check the timestamp's age; a receiver should.
func Verify(secret Secret, id string, timestamp int64, body []byte, header string) bool {
	want := []byte(Sign(secret, id, timestamp, body))
	for sig := range strings.FieldsSeq(header) {
		if hmac.Equal([]byte(sig), want) {
			return true
		}
	}
	return false
}
