package store

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

// Identity is how the ledger knows a message. It lives here because the key
// is part of the state file's format: every writer of the ledger (the folder
// workers, the send path) must derive it the same way.
type Identity struct {
	// Key is the ledger key (sink.KeyFor over Message-ID, first From
	// address and Date, or the stable header fields).
	Key string
	// MessageID is the Message-ID without brackets, as the matcher reads it.
	MessageID string
	// ContentHash identifies the exact header bytes, so a UIDVALIDITY
	// re-scan can tell the same message from a new one.
	ContentHash string
}

// Identify derives a message's identity from its raw header block
// (BODY[HEADER]) and returns the parsed header with it. It is the one
// derivation of the key: the sync pipeline and the send path both call it.
func Identify(header []byte) (Identity, *matcher.Message) {
	msg, _ := matcher.ParseHeader(header)
	from := ""
	if len(msg.From) > 0 {
		from = msg.From[0].Email
	}
	sum := sha256.Sum256(header)
	return Identity{
		Key:         sink.KeyFor(msg.MessageID, from, msg.Date, header),
		MessageID:   msg.MessageID,
		ContentHash: hex.EncodeToString(sum[:12]),
	}, msg
}
