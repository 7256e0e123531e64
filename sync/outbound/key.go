package outbound

import "github.com/mailsync/mailsync/store"

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
// Sent folder gets, with store.Identify, the derivation the folder worker
// uses when it fetches that copy. The worker then finds the key delivered
// in the ledger and only adds the copy's provenance instead of logging the
// mail a second time.
func identify(copy []byte) identity {
	id, _ := store.Identify(headerBlock(copy))
	return identity{key: id.Key, messageID: id.MessageID, contentHash: id.ContentHash}
}
