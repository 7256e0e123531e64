package outbound

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

// identity is how the sync pipeline will know the message when it meets
// the Sent copy.
type identity struct {
	// key is the ledger key the folder worker computes for the copy.
	key string
	// messageID is the Message-ID without brackets, as the matcher reads it.
	messageID string
	// contentHash identifies the copy's exact header bytes.
	contentHash string
}

// identify derives the message's identity from the header of the copy the
// Sent folder gets, exactly as the folder worker does when it fetches that
// copy (sync/worker/classify.go parseItem): the matcher parses
// BODY[HEADER], and sink.KeyFor hashes its Message-ID, first From address
// and Date. The worker then finds the key delivered in the ledger and only
// adds the copy's provenance instead of logging the mail a second time.
func identify(copy []byte) identity {
	header := headerBlock(copy)
	msg, _ := matcher.ParseHeader(header)
	from := ""
	if len(msg.From) > 0 {
		from = msg.From[0].Email
	}
	return identity{
		key:         sink.KeyFor(msg.MessageID, from, msg.Date, header),
		messageID:   msg.MessageID,
		contentHash: contentHash(header),
	}
}

// contentHash is sync/worker's contentHash (unexported there): the ledger
// keeps it so a UIDVALIDITY re-scan can tell the same message from a new
// one. Keep the two in step.
func contentHash(header []byte) string {
	sum := sha256.Sum256(header)
	return hex.EncodeToString(sum[:12])
}
