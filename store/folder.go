package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// FolderState is a folder's sync cursor.
type FolderState struct {
	// UIDValidity the UIDs below belong to; 0 before the first sync.
	UIDValidity uint32
	// LastUID is the highest UID fully handled (delivered, excluded,
	// parked in the outbox or dead-lettered); the next fetch starts above it.
	LastUID uint32
	// HighestModSeq is the CONDSTORE mod-sequence last seen (RFC 7162), 0
	// without CONDSTORE.
	HighestModSeq uint64
	// UIDNext as last reported by the server.
	UIDNext    uint32
	UpdatedAt  time.Time
	LastSyncAt time.Time
}

// folderStateV1 is version byte, UIDValidity, LastUID, HighestModSeq,
// UIDNext, UpdatedAt, LastSyncAt.
const (
	folderStateV1    = 1
	folderStateV1Len = 1 + 4 + 4 + 8 + 4 + 8 + 8
)

func encodeFolderState(s FolderState) []byte {
	b := make([]byte, 0, folderStateV1Len)
	b = append(b, folderStateV1)
	b = binary.BigEndian.AppendUint32(b, s.UIDValidity)
	b = binary.BigEndian.AppendUint32(b, s.LastUID)
	b = binary.BigEndian.AppendUint64(b, s.HighestModSeq)
	b = binary.BigEndian.AppendUint32(b, s.UIDNext)
	b = binary.BigEndian.AppendUint64(b, uint64(timeNanos(s.UpdatedAt)))
	b = binary.BigEndian.AppendUint64(b, uint64(timeNanos(s.LastSyncAt)))
	return b
}

func decodeFolderState(b []byte) (FolderState, error) {
	if len(b) != folderStateV1Len || b[0] != folderStateV1 {
		return FolderState{}, fmt.Errorf("corrupt cursor: %d bytes, version %d", len(b), firstByte(b))
	}
	b = b[1:]
	var s FolderState
	s.UIDValidity = binary.BigEndian.Uint32(b[0:])
	s.LastUID = binary.BigEndian.Uint32(b[4:])
	s.HighestModSeq = binary.BigEndian.Uint64(b[8:])
	s.UIDNext = binary.BigEndian.Uint32(b[16:])
	s.UpdatedAt = nanosTime(int64(binary.BigEndian.Uint64(b[20:])))
	s.LastSyncAt = nanosTime(int64(binary.BigEndian.Uint64(b[28:])))
	return s, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// Folder returns the folder's cursor, the zero FolderState if none was saved.
func (t *Tx) Folder(account, folder string) (FolderState, error) {
	if err := checkFolder(account, folder); err != nil {
		return FolderState{}, folderErr(account, folder, "get cursor", err)
	}
	f, err := t.folder(account, folder, false)
	if err != nil {
		return FolderState{}, folderErr(account, folder, "get cursor", err)
	}
	if f == nil {
		return FolderState{}, nil
	}
	v := f.Get(keyState)
	if v == nil {
		return FolderState{}, nil
	}
	s, err := decodeFolderState(v)
	if err != nil {
		return FolderState{}, folderErr(account, folder, "get cursor", err)
	}
	return s, nil
}

// PutFolder saves the folder's cursor as given (set UpdatedAt yourself).
func (t *Tx) PutFolder(account, folder string, s FolderState) error {
	if err := checkFolder(account, folder); err != nil {
		return folderErr(account, folder, "put cursor", err)
	}
	f, err := t.folder(account, folder, true)
	if err == nil {
		err = f.Put(keyState, encodeFolderState(s))
	}
	if err != nil {
		return folderErr(account, folder, "put cursor", err)
	}
	return nil
}

// ResetFolder handles a UIDVALIDITY change (RFC 3501 §2.3.1.1): the old UIDs
// name nothing any more, so it clears the folder's uids, outbox and
// dead-letter maps and sets the cursor to the new validity with LastUID,
// UIDNext and HighestModSeq 0 (LastSyncAt is kept, counters too). The global
// ledger stays, so re-fetched messages are recognised by key and not
// delivered again; dead-lettered ones keep their reason there.
func (t *Tx) ResetFolder(account, folder string, uidValidity uint32) error {
	const op = "reset for new uidvalidity"
	if err := checkFolder(account, folder); err != nil {
		return folderErr(account, folder, op, err)
	}
	old, err := t.Folder(account, folder)
	if err != nil {
		return err
	}
	f, err := t.folder(account, folder, true)
	if err != nil {
		return folderErr(account, folder, op, err)
	}
	for _, sub := range [][]byte{subUIDs, subOutbox, subDeadLetter} {
		if err := f.DeleteBucket(sub); err != nil && !errors.Is(err, bberrors.ErrBucketNotFound) {
			return folderErr(account, folder, op, fmt.Errorf("clear %s: %w", sub, err))
		}
	}
	return t.PutFolder(account, folder, FolderState{
		UIDValidity: uidValidity,
		UpdatedAt:   time.Now(),
		LastSyncAt:  old.LastSyncAt,
	})
}

// Accounts lists the accounts that have state, in byte order.
func (t *Tx) Accounts() ([]string, error) {
	accts, err := t.top(bucketAccounts)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	if accts == nil {
		return nil, nil
	}
	names, err := bucketNames(accts)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return names, nil
}

// Folders lists the folders of account that have state, in byte order.
func (t *Tx) Folders(account string) ([]string, error) {
	if err := checkName("account", account); err != nil {
		return nil, fmt.Errorf("account %q: list folders: %w", clip(account), err)
	}
	a, err := t.account(account, false)
	if err != nil {
		return nil, fmt.Errorf("account %q: list folders: %w", clip(account), err)
	}
	if a == nil || a.Bucket(subFolders) == nil {
		return nil, nil
	}
	names, err := bucketNames(a.Bucket(subFolders))
	if err != nil {
		return nil, fmt.Errorf("account %q: list folders: %w", clip(account), err)
	}
	return names, nil
}

func bucketNames(b *bbolt.Bucket) ([]string, error) {
	var names []string
	err := b.ForEachBucket(func(k []byte) error {
		names = append(names, string(k))
		return nil
	})
	return names, err
}

// DeleteAccount removes the account's cursors, maps and counters. Ledger
// entries (and their provenance) and threads are global and stay, so mail
// already delivered is not delivered again if the account comes back.
// Deleting a missing account is not an error.
func (t *Tx) DeleteAccount(account string) error {
	if err := checkName("account", account); err != nil {
		return fmt.Errorf("account %q: delete: %w", clip(account), err)
	}
	accts, err := t.top(bucketAccounts)
	if err == nil && accts != nil {
		err = accts.DeleteBucket([]byte(account))
	}
	if err != nil && !errors.Is(err, bberrors.ErrBucketNotFound) {
		return fmt.Errorf("account %q: delete: %w", clip(account), err)
	}
	return nil
}
