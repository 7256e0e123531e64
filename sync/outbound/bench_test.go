package outbound

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkComposeStructured builds a text+HTML message with a 1 MiB
// attachment: the CPU cost of a send before any network.
func BenchmarkComposeStructured(b *testing.B) {
	req := Request{To: []string{"Bob <bob@x.example>"}, Cc: []string{"c@x.example"}, Bcc: []string{"a@acme.example"},
		Subject: "Quarterly offer", Text: "Hello,\nplease find the offer attached.\n", HTML: "<p>Hello,</p><p>please find the offer attached.</p>",
		Attachments: []Attachment{{Filename: "offer.pdf", Content: make([]byte, 1<<20)}}, IdempotencyKey: "k"}
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		out, err := compose(testAcct, &req, composeNow)
		if err != nil {
			b.Fatal(err)
		}
		_ = identify(out.copy)
	}
}

// BenchmarkSendLoopback is one whole send against a loopback SMTP peer
// (implicit TLS, AUTH PLAIN) and a real Dovecot: submission, APPEND with
// \Seen, and the three state-file commits (fsync on).
func BenchmarkSendLoopback(b *testing.B) {
	r := newRig(b, rigOptions{})
	r.store.Close()
	r.statePath += ".sync"
	r.openStoreSynced()
	req := Request{To: []string{"bob@customer.example"}, Subject: "bench", Text: "hello", Records: testRecords}
	i := 0
	for b.Loop() {
		req.IdempotencyKey = fmt.Sprintf("bench-%d", i)
		i++
		if _, err := r.sender.Send(context.Background(), accountID, req); err != nil {
			b.Fatal(err)
		}
	}
}
