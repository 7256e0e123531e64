package oauth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
)

func testVault(t *testing.T, key []byte) (*Vault, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	v, err := NewVault(st, key)
	if err != nil {
		t.Fatal(err)
	}
	return v, st
}

func sampleRecord() *record {
	now := time.Now().UTC().Truncate(time.Second)
	return &record{Client: "c1", Access: "at_SECRET_ACCESS", Refresh: "rt_SECRET_REFRESH",
		Expiry: now.Add(time.Hour), Obtained: now, RefreshIssued: now, LastRefresh: now}
}

func TestVaultRoundTripIsEncrypted(t *testing.T) {
	v, st := testVault(t, testKey)
	r := sampleRecord()
	if err := v.save("sales", r); err != nil {
		t.Fatal(err)
	}
	got, err := v.load("sales")
	if err != nil {
		t.Fatal(err)
	}
	if *got != *r {
		t.Fatalf("load() = %+v, want %+v", got, r)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"SECRET_ACCESS", "SECRET_REFRESH", `"refresh"`} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("state file holds %q in clear", s)
		}
	}
}

func TestVaultNoncesDiffer(t *testing.T) {
	v, _ := testVault(t, testKey)
	a, _ := v.seal("sales", sampleRecord())
	b, _ := v.seal("sales", sampleRecord())
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one record are equal: the nonce is not random")
	}
	if a[0] != formatGCMv1 {
		t.Fatalf("format byte = %#x, want %#x", a[0], formatGCMv1)
	}
}

func TestVaultRefusesWrongKeyAndMovedRecords(t *testing.T) {
	v, _ := testVault(t, testKey)
	sealed, err := v.seal("sales", sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewVault(nil, bytes.Repeat([]byte{7}, 32))
	plain, _ := NewVault(nil, nil)
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name    string
		v       *Vault
		account string
		b       []byte
		want    string
	}{
		{"other key", other, "sales", sealed, "encrypted with another key"},
		{"other account", v, "support", sealed, "belongs to another account"},
		{"tampered", v, "sales", tampered, "altered"},
		{"no key", plain, "sales", sealed, "no tokens.key_file"},
		{"truncated", v, "sales", sealed[:10], "truncated"},
		{"unknown format", v, "sales", []byte{9, 1, 2}, "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.open(tt.account, tt.b)
			if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("open() error = %v, want ErrUnreadable with %q", err, tt.want)
			}
		})
	}
}

func TestVaultPlaintextReadableAfterAddingKey(t *testing.T) {
	plain, st := testVault(t, nil)
	if err := plain.save("sales", sampleRecord()); err != nil {
		t.Fatal(err)
	}
	keyed, _ := NewVault(st, testKey)
	got, err := keyed.load("sales")
	if err != nil || got.Refresh != "rt_SECRET_REFRESH" {
		t.Fatalf("load() = %+v, %v", got, err)
	}
}

func TestNewVaultKeyLength(t *testing.T) {
	if _, err := NewVault(nil, []byte("short")); err == nil {
		t.Fatal("NewVault accepted a 5-byte key")
	}
}

func BenchmarkSealOpen(b *testing.B) {
	v, err := NewVault(nil, testKey)
	if err != nil {
		b.Fatal(err)
	}
	r := sampleRecord()
	for b.Loop() {
		sealed, err := v.seal("sales", r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.open("sales", sealed); err != nil {
			b.Fatal(err)
		}
	}
}
