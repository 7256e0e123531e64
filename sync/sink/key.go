package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// KeyFor derives the idempotency key of a message from what identifies
// the message itself rather than its mailbox copy: the same mail in two
// folders or two mailboxes gets the same key, so the CRM gets one activity.
//
// With a Message-ID the key hashes it together with the sender and the Date
// header (some mailers reuse ids); copies delivered to several recipients
// differ in trace headers but not in these. Without a Message-ID it hashes
// every header except the trace fields that delivery adds. from is the
// first From address as normalised by the matcher; date is the parsed Date
// header (zero when missing or unparseable); header is the raw header block.
// The derivation is part of the state file's format: changing it would make
// every message look new.
func KeyFor(messageID, from string, date time.Time, header []byte) string {
	h := sha256.New()
	if messageID != "" {
		h.Write([]byte("v1\x00mid\x00"))
		h.Write([]byte(messageID))
		h.Write([]byte{0})
		h.Write([]byte(strings.ToLower(from)))
		h.Write([]byte{0})
		if !date.IsZero() {
			h.Write([]byte(date.UTC().Format(time.RFC3339)))
		}
	} else {
		h.Write([]byte("v1\x00hdr\x00"))
		writeStableHeader(h, header)
	}
	sum := h.Sum(nil)
	return "msg_" + hex.EncodeToString(sum[:16])
}

// traceFields are added or rewritten per delivered copy (RFC 5321 §4.4 and
// common MTA practice), so they must not take part in the identity.
var traceFields = []string{"received:", "return-path:", "delivered-to:", "x-original-to:", "x-delivered-to:",
	"authentication-results:", "arc-", "x-spam", "x-virus", "dkim-signature:", "x-ms-exchange-", "status:", "x-uid:", "x-keywords:"}

func writeStableHeader(h interface{ Write([]byte) (int, error) }, header []byte) {
	skipping := false
	for len(header) > 0 {
		line := header
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i+1], header[i+1:]
		} else {
			header = nil
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if !skipping {
				h.Write(bytes.TrimRight(line, "\r\n"))
			}
			continue
		}
		skipping = false
		lower := bytes.ToLower(line[:min(len(line), 40)])
		for _, f := range traceFields {
			if bytes.HasPrefix(lower, []byte(f)) {
				skipping = true
				break
			}
		}
		if !skipping {
			h.Write([]byte{'\n'})
			h.Write(bytes.TrimRight(line, "\r\n"))
		}
	}
}
