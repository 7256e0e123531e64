package sink

import (
	"strings"
	"testing"
	"time"
)

func TestKeyForIgnoresTraceHeadersAndMailboxCopy(t *testing.T) {
	date := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	a := KeyFor("abc@x.example", "ann@x.example", date, []byte("Received: from a\r\nSubject: hi\r\n"))
	b := KeyFor("abc@x.example", "ANN@x.example", date.In(time.FixedZone("X", 3600)), []byte("Received: from b\r\nSubject: hi\r\n"))
	if a != b {
		t.Fatalf("KeyFor differs between two copies of one message: %s vs %s", a, b)
	}
	if c := KeyFor("abc@x.example", "bob@x.example", date, nil); c == a {
		t.Fatalf("KeyFor ignores the sender: %s", c)
	}
	h1 := "Received: by mx1\r\nDelivered-To: a@y\r\nFrom: z@q\r\nSubject: s\r\n"
	h2 := "Received: by mx2\r\n\tcontinued\r\nDelivered-To: b@y\r\nFrom: z@q\r\nSubject: s\r\n"
	if KeyFor("", "", time.Time{}, []byte(h1)) != KeyFor("", "", time.Time{}, []byte(h2)) {
		t.Fatal("without Message-ID, trace headers changed the key")
	}
	if KeyFor("", "", time.Time{}, []byte(h1)) == KeyFor("", "", time.Time{}, []byte(strings.Replace(h1, "Subject: s", "Subject: t", 1))) {
		t.Fatal("without Message-ID, a different subject gave the same key")
	}
	if !strings.HasPrefix(a, "msg_") || len(a) != 36 {
		t.Fatalf("key %q: want msg_ + 32 hex digits", a)
	}
}
