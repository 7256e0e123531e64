package store

import (
	"encoding/json"
	"fmt"
)

// PutUID maps a folder UID to its message key (for write-back, moves and
// expunge detection).
func (t *Tx) PutUID(account, folder string, uid uint32, key string) error {
	const op = "put uid"
	if err := checkFolder(account, folder); err != nil {
		return folderErr(account, folder, op, err)
	}
	if err := checkUID(uid); err != nil {
		return folderErr(account, folder, op, err)
	}
	if err := checkName("message key", key); err != nil {
		return folderErr(account, folder, op, err)
	}
	b, err := t.folderSub(account, folder, subUIDs, true)
	if err == nil {
		err = b.Put(uidKey(uid), []byte(key))
	}
	if err != nil {
		return folderErr(account, folder, fmt.Sprintf("%s %d", op, uid), err)
	}
	return nil
}

// UIDKey returns the message key mapped to uid; ok is false if none.
func (t *Tx) UIDKey(account, folder string, uid uint32) (key string, ok bool, err error) {
	const op = "get uid"
	if err := checkFolder(account, folder); err != nil {
		return "", false, folderErr(account, folder, op, err)
	}
	if err := checkUID(uid); err != nil {
		return "", false, folderErr(account, folder, op, err)
	}
	b, err := t.folderSub(account, folder, subUIDs, false)
	if err != nil {
		return "", false, folderErr(account, folder, op, err)
	}
	if b == nil {
		return "", false, nil
	}
	v := b.Get(uidKey(uid))
	if v == nil {
		return "", false, nil
	}
	return string(v), true, nil
}

// UIDRange calls fn for each mapped UID in [from, to], in ascending order
// (pass math.MaxUint32 as to for no upper bound). fn's error stops the scan
// and is returned as is. fn must not write to this folder's UID map during
// the scan (collect, then write), as bbolt cursors do not survive that.
func (t *Tx) UIDRange(account, folder string, from, to uint32, fn func(uid uint32, key string) error) error {
	if err := checkFolder(account, folder); err != nil {
		return folderErr(account, folder, "scan uids", err)
	}
	b, err := t.folderSub(account, folder, subUIDs, false)
	if err != nil {
		return folderErr(account, folder, "scan uids", err)
	}
	if b == nil || from > to {
		return nil
	}
	c := b.Cursor()
	for k, v := c.Seek(uidKey(from)); k != nil; k, v = c.Next() {
		uid := parseUID(k)
		if uid == 0 || uid > to {
			break
		}
		if err := fn(uid, string(v)); err != nil {
			return err
		}
	}
	return nil
}

// DeleteUID removes uid from the folder's UID map; a missing uid is not an
// error.
func (t *Tx) DeleteUID(account, folder string, uid uint32) error {
	return t.deleteUIDEntry(account, folder, subUIDs, uid, "delete uid")
}

// deleteUIDEntry removes uid from one of a folder's maps.
func (t *Tx) deleteUIDEntry(account, folder string, sub []byte, uid uint32, op string) error {
	if err := checkFolder(account, folder); err != nil {
		return folderErr(account, folder, op, err)
	}
	if err := checkUID(uid); err != nil {
		return folderErr(account, folder, op, err)
	}
	b, err := t.folderSub(account, folder, sub, false)
	if err == nil && b != nil {
		err = b.Delete(uidKey(uid))
	}
	if err != nil {
		return folderErr(account, folder, fmt.Sprintf("%s %d", op, uid), err)
	}
	return nil
}

// putUIDJSON stores v as JSON under uid in one of a folder's maps.
func (t *Tx) putUIDJSON(account, folder string, sub []byte, uid uint32, v any, op string) error {
	if err := checkFolder(account, folder); err != nil {
		return folderErr(account, folder, op, err)
	}
	if err := checkUID(uid); err != nil {
		return folderErr(account, folder, op, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return folderErr(account, folder, op, err)
	}
	b, err := t.folderSub(account, folder, sub, true)
	if err == nil {
		err = b.Put(uidKey(uid), data)
	}
	if err != nil {
		return folderErr(account, folder, fmt.Sprintf("%s %d", op, uid), err)
	}
	return nil
}

// uidEntry is one decoded entry of a per-UID JSON map.
type uidEntry[T any] struct {
	uid uint32
	v   T
}

// forEachUIDJSON decodes every entry of one of a folder's maps first, then
// calls fn in UID order, so fn may write to the same map. These maps (outbox,
// dead letters) stay small.
func forEachUIDJSON[T any](t *Tx, account, folder string, sub []byte, op string, fn func(uint32, T) error) error {
	if err := checkFolder(account, folder); err != nil {
		return folderErr(account, folder, op, err)
	}
	b, err := t.folderSub(account, folder, sub, false)
	if err != nil {
		return folderErr(account, folder, op, err)
	}
	if b == nil {
		return nil
	}
	var all []uidEntry[T]
	err = b.ForEach(func(k, v []byte) error {
		e := uidEntry[T]{uid: parseUID(k)}
		if e.uid == 0 {
			return fmt.Errorf("malformed uid key %x", k)
		}
		if err := json.Unmarshal(v, &e.v); err != nil {
			return fmt.Errorf("uid %d: %w", e.uid, err)
		}
		all = append(all, e)
		return nil
	})
	if err != nil {
		return folderErr(account, folder, op, err)
	}
	for _, e := range all {
		if err := fn(e.uid, e.v); err != nil {
			return err
		}
	}
	return nil
}

// countSub counts the entries of one of a folder's maps.
func (t *Tx) countSub(account, folder string, sub []byte, op string) (int, error) {
	if err := checkFolder(account, folder); err != nil {
		return 0, folderErr(account, folder, op, err)
	}
	b, err := t.folderSub(account, folder, sub, false)
	if err != nil {
		return 0, folderErr(account, folder, op, err)
	}
	if b == nil {
		return 0, nil
	}
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n, nil
}
