package store

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
)

// An adapter's KV keeps its keys apart from another adapter's and from
// mailsync's own, and survives a reopen of the state file.
func TestAdapterKV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path, Options{})
	odoo, hub := s.AdapterKV("odoo"), s.AdapterKV("hubspot")
	if err := odoo.PutMany(map[string][]byte{"a": []byte("1"), "b": []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if err := hub.Put("a", []byte("other")); err != nil {
		t.Fatal(err)
	}
	if err := odoo.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if v, _ := hub.Get("b"); v != nil {
		t.Errorf("hubspot sees odoo's key: %q", v)
	}
	view(t, s, func(tx *Tx) error {
		if _, ok, _ := tx.GetKV("a"); ok {
			t.Error("an adapter key is visible as mailsync's own key")
		}
		return nil
	})
	s.Close()
	s = openAt(t, path, Options{})
	odoo, hub = s.AdapterKV("odoo"), s.AdapterKV("hubspot")
	for _, c := range []struct {
		kv   sink.KV
		key  string
		want []byte
	}{{odoo, "a", []byte("1")}, {odoo, "b", nil}, {hub, "a", []byte("other")}} {
		got, err := c.kv.Get(c.key)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("Get(%q) after reopen = %q, %v; want %q", c.key, got, err, c.want)
		}
	}
}

// Entries written before records created by the CRM were kept (layout 1)
// still decode; the current layout keeps them.
func TestLedgerLayouts(t *testing.T) {
	v1 := []byte{ledgerV1, 1, 5, 'a', 'c', 't', '-', '1', 0, 0, 0, 0, 0, 0, 0, 0}
	e, err := decodeLedger(v1)
	if err != nil {
		t.Fatalf("decode layout 1: %v", err)
	}
	if e.Status != StatusDelivered || e.Activity != "act-1" || e.Created != nil {
		t.Errorf("layout 1 entry = %+v", e)
	}
	e.Created = []sink.Record{{Kind: sink.KindLead, ID: "17", Name: "New lead"}}
	e.Records = []sink.Record{{Kind: sink.KindContact, ID: "7"}}
	b, err := encodeLedger(e)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != ledgerV2 {
		t.Errorf("new entries use layout %d, want %d", b[0], ledgerV2)
	}
	got, err := decodeLedger(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
	}
}

func TestKVKeys(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "state.db"), Options{})
	view(t, s, func(tx *Tx) error {
		if keys, err := tx.KVKeys("send-copy/", 0); err != nil || keys != nil {
			t.Errorf("KVKeys on an empty file = %q, %v", keys, err)
		}
		return nil
	})
	if err := s.Update(func(tx *Tx) error {
		for _, k := range []string{"send-copy/a/2", "send/a/1", "send-copy/a/1", "send-copy/b/1", "sendx"} {
			if err := tx.PutKV(k, []byte("v")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	view(t, s, func(tx *Tx) error {
		keys, err := tx.KVKeys("send-copy/", 0)
		if want := []string{"send-copy/a/1", "send-copy/a/2", "send-copy/b/1"}; err != nil || !reflect.DeepEqual(keys, want) {
			t.Errorf("KVKeys = %q, %v, want %q", keys, err, want)
		}
		if keys, _ := tx.KVKeys("send-copy/", 2); len(keys) != 2 {
			t.Errorf("KVKeys with limit 2 = %q", keys)
		}
		return nil
	})
}
