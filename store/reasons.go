package store

import (
	"encoding/binary"
	"strings"
)

// subReasons holds, per folder, how many copies were skipped or excluded
// for each reason code ("skip no_match" -> 6), so status can say why a
// folder delivers nothing.
var subReasons = []byte("reasons")

// ReasonCode is the code part of an outcome reason ("no_match: nothing
// matched" -> "no_match"): a small, fixed set, fit for a metric label.
func ReasonCode(reason string) string {
	code, _, _ := strings.Cut(reason, ":")
	code = strings.TrimSpace(code)
	if code == "" || strings.ContainsAny(code, " /") {
		return "other"
	}
	return code
}

// countReason adds one to the folder's count of status (skipped or
// excluded) for the outcome's reason.
func (t *Tx) countReason(status LedgerStatus, o Outcome) error {
	if o.Copy.Account == "" || o.Copy.Folder == "" {
		return nil
	}
	b, err := t.folderSub(o.Copy.Account, o.Copy.Folder, subReasons, true)
	if err != nil {
		return folderErr(o.Copy.Account, o.Copy.Folder, "count reason", err)
	}
	k := []byte(string(status) + " " + ReasonCode(o.Reason))
	var n uint64
	if v := b.Get(k); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return b.Put(k, binary.BigEndian.AppendUint64(nil, n+1))
}

// Reasons returns the folder's skipped and excluded counts by reason, keyed
// "skipped no_match", "excluded internal", ...; nil if none were recorded.
func (t *Tx) Reasons(account, folder string) (map[string]int64, error) {
	b, err := t.folderSub(account, folder, subReasons, false)
	if err != nil || b == nil {
		return nil, err
	}
	out := map[string]int64{}
	err = b.ForEach(func(k, v []byte) error {
		if len(v) == 8 {
			out[string(k)] = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return out, err
}
