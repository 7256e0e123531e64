package store

import (
	"bytes"
	"reflect"
	"testing"
)

// The decoders read bytes from disk that a crash, a bug or a hand edit may
// have mangled: they must return an error, never panic or over-allocate.
// Seed corpora are in testdata/fuzz/.

func FuzzDecodeLedger(f *testing.F) {
	f.Add([]byte{ledgerV1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeLedger(b)
		if err != nil {
			return
		}
		enc, err := encodeLedger(e)
		if err != nil {
			t.Fatalf("encodeLedger(decoded %+v) = %v", e, err)
		}
		e2, err := decodeLedger(enc)
		if err != nil {
			t.Fatalf("decodeLedger(re-encoded) = %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed entry:\n%+v\n%+v", e, e2)
		}
	})
}

func FuzzDecodeThread(f *testing.F) {
	f.Add([]byte{threadsV1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := decodeThread(b)
		if err != nil {
			return
		}
		rs2, err := decodeThread(encodeThread(rs))
		if err != nil || !reflect.DeepEqual(rs, rs2) {
			t.Fatalf("round trip: %+v, %v; want %+v", rs2, err, rs)
		}
	})
}

func FuzzDecodeFolderState(f *testing.F) {
	f.Add(encodeFolderState(FolderState{UIDValidity: 1, LastUID: 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeFolderState(b)
		if err != nil {
			return
		}
		// The layout is fixed-width, so it must round-trip byte for byte.
		if got := encodeFolderState(s); !bytes.Equal(got, b) {
			t.Fatalf("encodeFolderState(decoded) = %x, want %x", got, b)
		}
	})
}

func FuzzDecodeCounters(f *testing.F) {
	f.Add(encodeCounters(Counters{Delivered: 1, Retracted: -1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCounters(b)
		if err != nil {
			return
		}
		if c2, err := decodeCounters(encodeCounters(c)); err != nil || c2 != c {
			t.Fatalf("round trip: %+v, %v; want %+v", c2, err, c)
		}
	})
}
