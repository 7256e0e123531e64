package outbound

import (
	"strings"
	"testing"
)

func TestRawIdentity(t *testing.T) {
	msg := func(hdr string) []byte { return []byte("From: a@b.example\r\n" + hdr + "Subject: x\r\n\r\nbody\r\n") }
	k1, f1 := rawIdentity(msg("Message-ID: <one@b.example>\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\n"))
	k2, f2 := rawIdentity(msg("Message-ID: <one@b.example>\r\nDate: Thu, 3 Dec 2026 10:05:00 +0000\r\n"))
	if k1 != "smtp:one@b.example" || k1 != k2 || f1 != f2 {
		t.Errorf("a rebuilt message with the same Message-ID: keys %q/%q, fingerprints %q/%q; want one key and fingerprint", k1, k2, f1, f2)
	}
	long := "<" + strings.Repeat("x", 300) + "@b.example>"
	if k, _ := rawIdentity(msg("Message-ID: " + long + "\r\n")); validateIdempotencyKey(k) != nil || !strings.HasPrefix(k, "smtp:msgid-sha256:") {
		t.Errorf("a long Message-ID gives key %q", k)
	}
	a, fa := rawIdentity(msg(""))
	b, _ := rawIdentity(msg(""))
	c, _ := rawIdentity(msg("Cc: c@b.example\r\n"))
	if a != b || a == c || !strings.HasPrefix(a, "smtp:sha256:") || !strings.HasPrefix(fa, "content:") {
		t.Errorf("without a Message-ID: keys %q %q %q; want equal for equal bytes only", a, b, c)
	}
}
