package worker

import (
	"crypto/sha256"
	"encoding/hex"
)

// contentHash identifies the exact bytes of a header block; the ledger keeps
// it so a UIDVALIDITY re-scan can tell the same message from a new one.
func contentHash(header []byte) string {
	sum := sha256.Sum256(header)
	return hex.EncodeToString(sum[:12])
}
