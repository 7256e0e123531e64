package store

import (
	"bytes"
	"fmt"

	"github.com/mailsync/mailsync/sync/sink"
)

// PutKV stores a copy of value under key in the misc key-value area (later:
// encrypted OAuth tokens). Errors never include the value.
func (t *Tx) PutKV(key string, value []byte) error {
	if err := checkName("kv key", key); err != nil {
		return fmt.Errorf("kv %q: put: %w", clip(key), err)
	}
	b, err := t.top(bucketKV)
	if err == nil {
		// bbolt keeps a reference to value until commit; the copy stops a
		// caller that reuses its buffer from changing what is stored.
		err = b.Put([]byte(key), bytes.Clone(value))
	}
	if err != nil {
		return fmt.Errorf("kv %q: put: %w", clip(key), err)
	}
	return nil
}

// GetKV returns a copy of the value under key; ok is false if there is none.
func (t *Tx) GetKV(key string) (value []byte, ok bool, err error) {
	if err := checkName("kv key", key); err != nil {
		return nil, false, fmt.Errorf("kv %q: get: %w", clip(key), err)
	}
	b, err := t.top(bucketKV)
	if err != nil {
		return nil, false, fmt.Errorf("kv %q: get: %w", clip(key), err)
	}
	if b == nil {
		return nil, false, nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, false, nil
	}
	return bytes.Clone(v), true, nil
}

// DeleteKV removes key; a missing key is not an error.
func (t *Tx) DeleteKV(key string) error {
	if err := checkName("kv key", key); err != nil {
		return fmt.Errorf("kv %q: delete: %w", clip(key), err)
	}
	b, err := t.top(bucketKV)
	if err == nil && b != nil {
		err = b.Delete([]byte(key))
	}
	if err != nil {
		return fmt.Errorf("kv %q: delete: %w", clip(key), err)
	}
	return nil
}

// AdapterKV returns the namespace of the CRM adapter name in the key-value
// area: its keys are stored as "sink/NAME/KEY", apart from mailsync's own.
func (s *Store) AdapterKV(name string) sink.KV { return adapterKV{s: s, prefix: "sink/" + name + "/"} }

type adapterKV struct {
	s      *Store
	prefix string
}

func (a adapterKV) Get(key string) (v []byte, err error) {
	err = a.s.View(func(tx *Tx) error {
		v, _, err = tx.GetKV(a.prefix + key)
		return err
	})
	return v, err
}

func (a adapterKV) Put(key string, value []byte) error {
	return a.s.Update(func(tx *Tx) error { return tx.PutKV(a.prefix+key, value) })
}

func (a adapterKV) PutMany(kv map[string][]byte) error {
	return a.s.Update(func(tx *Tx) error {
		for k, v := range kv {
			if err := tx.PutKV(a.prefix+k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (a adapterKV) Delete(key string) error {
	return a.s.Update(func(tx *Tx) error { return tx.DeleteKV(a.prefix + key) })
}

// KVKeys returns the keys that start with prefix, in order, at most limit
// of them (0: no limit).
func (t *Tx) KVKeys(prefix string, limit int) ([]string, error) {
	b, err := t.top(bucketKV)
	if err != nil {
		return nil, fmt.Errorf("kv %q: list: %w", clip(prefix), err)
	}
	if b == nil {
		return nil, nil
	}
	var keys []string
	c := b.Cursor()
	p := []byte(prefix)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, string(k))
		if limit > 0 && len(keys) == limit {
			break
		}
	}
	return keys, nil
}
