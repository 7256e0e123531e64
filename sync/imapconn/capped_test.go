package imapconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// chunkReader returns data in chunks whose sizes come from a seeded PRNG,
// to exercise every split of the stream across reads.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
	max  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + c.rng.IntN(c.max)
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// runCapped reads all of data through a cappedReader split into chunks of
// at most maxChunk bytes and returns what came out and the final error.
func runCapped(data []byte, maxLine int, maxLit int64, maxChunk int, seed uint64) ([]byte, error) {
	cr := &cappedReader{
		r: &chunkReader{data: data, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b9)), max: maxChunk},
		s: newScanner(maxLine, maxLit),
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for range len(data) + 2 { // each Read makes progress or fails
		n, err := cr.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
	return out.Bytes(), errors.New("runCapped: no progress")
}

func TestCappedReader(t *testing.T) {
	body := strings.Repeat("x", 40) // longer than maxLine below
	tests := []struct {
		name    string
		in      string
		maxLine int
		maxLit  int64
		// wantN is how many bytes pass; wantErr the limit broken, if any.
		wantN   int
		wantErr error
	}{
		{name: "short lines pass", in: "* OK hi\r\nA1 OK done\r\n", maxLine: 16, maxLit: 10, wantN: -1},
		{name: "line of exactly max passes", in: "* OK " + strings.Repeat("a", 9) + "\r\n", maxLine: 16, maxLit: 10, wantN: -1},
		{name: "line over max fails at first byte over", in: "* OK " + strings.Repeat("a", 20) + "\r\n", maxLine: 16, maxLit: 10, wantN: 16, wantErr: ErrLineTooLong},
		{name: "unterminated line fails", in: "* OK " + strings.Repeat("a", 100), maxLine: 16, maxLit: 10, wantN: 16, wantErr: ErrLineTooLong},
		{name: "literal passes uncounted", in: "* 1 FETCH (BODY[] {40}\r\n" + body + ")\r\n", maxLine: 30, maxLit: 40, wantN: -1},
		{name: "literal over max fails at announcing LF", in: "* 1 FETCH (BODY[] {41}\r\n" + body + "x)\r\n", maxLine: 30, maxLit: 40, wantN: 23, wantErr: ErrLiteralTooLarge},
		{name: "huge literal fails", in: "* 1 FETCH (BODY[] {1073741824}\r\n" + body, maxLine: 64, maxLit: 1 << 20, wantN: 31, wantErr: ErrLiteralTooLarge},
		{name: "non-synchronizing literal", in: "* 1 FETCH (BODY[] {40+}\r\n" + body + ")\r\n", maxLine: 30, maxLit: 40, wantN: -1},
		{name: "literal8", in: "* 1 FETCH (BINARY[] ~{40}\r\n" + body + ")\r\n", maxLine: 30, maxLit: 40, wantN: -1},
		{name: "bare LF and SP after literal", in: "* 1 FETCH (BODY[] {40} \n" + body + ")\r\n", maxLine: 30, maxLit: 40, wantN: -1},
		{name: "zero literal", in: "* 1 FETCH (BODY[] {0}\r\n)\r\n* OK x\r\n", maxLine: 30, maxLit: 40, wantN: -1},
		{name: "literal in status text is text", in: "* OK see {40}\r\n" + body + "\r\n", maxLine: 30, maxLit: 40, wantN: 15 + 30, wantErr: ErrLineTooLong},
		{name: "literal in tagged text is text", in: "A1 OK see {40}\r\n" + body + "\r\n", maxLine: 30, maxLit: 40, wantN: 16 + 30, wantErr: ErrLineTooLong},
		{name: "literal inside quotes is quoted text", in: "* 1 FETCH (X \"{40}\r\n" + body + "\")\r\n", maxLine: 30, maxLit: 40, wantN: 30, wantErr: ErrLineTooLong},
		{name: "20-digit size is not a literal", in: "* 1 FETCH (X {00000000000000000040}\r\n" + body + ")\r\n", maxLine: 40, maxLit: 40, wantN: 37 + 40, wantErr: ErrLineTooLong},
		{name: "19-digit size is a literal", in: "* 1 FETCH (X {0000000000000000040}\r\n" + body + ")\r\n", maxLine: 40, maxLit: 40, wantN: -1},
		{name: "19-digit size over max", in: "* 1 FETCH (X {9999999999999999999}\r\n", maxLine: 45, maxLit: 40, wantN: 35, wantErr: ErrLiteralTooLarge},
		{
			name: "quoted line breaks keep one response",
			in:   "* 1 FETCH (ENVELOPE (\"" + strings.Repeat("ab\r\n", 20) + "\"))\r\n", maxLine: 40, maxLit: 10,
			wantN: 40, wantErr: ErrLineTooLong,
		},
		{name: "escaped quote stays inside string", in: "* 1 FETCH (X \"a\\\"{5}\r\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\")\r\n", maxLine: 40, maxLit: 10, wantN: 40, wantErr: ErrLineTooLong},
		{name: "balanced quotes then literal", in: "* 1 FETCH (X \"a\\\\\" Y {40}\r\n" + body + ")\r\n", maxLine: 40, maxLit: 40, wantN: -1},
		{
			name: "chained literals share the line budget",
			in:   "* 1 FETCH (X (" + strings.Repeat("{1}\r\na ", 10) + "))\r\n", maxLine: 40, maxLit: 10,
			wantN: 14 + 4*7 + 2, wantErr: ErrLineTooLong,
		},
		{name: "open response code spans lines", in: "* OK [FOO bar\r\n" + strings.Repeat("zzzzzzzz\r\n", 5) + "]\r\n", maxLine: 40, maxLit: 10, wantN: 40, wantErr: ErrLineTooLong},
		{name: "closed response code ends at LF", in: "* OK [ALERT] x\r\n" + strings.Repeat("* OK zzzzzzzz\r\n", 5), maxLine: 20, maxLit: 10, wantN: -1},
		{name: "numbered status opens code", in: "* 3 NO [X y\r\n" + strings.Repeat("zzzzzzzz\r\n", 5) + "]\r\n", maxLine: 40, maxLit: 10, wantN: 40, wantErr: ErrLineTooLong},
		{name: "tagged code spans lines", in: "A1 OK [X y\r\n" + strings.Repeat("zzzzzzzz\r\n", 5) + "]\r\n", maxLine: 40, maxLit: 10, wantN: 40, wantErr: ErrLineTooLong},
		{name: "responses reset the budget", in: strings.Repeat("* 1 FETCH (FLAGS (\\Seen))\r\n", 50), maxLine: 30, maxLit: 10, wantN: -1},
		{name: "continuation is text", in: "+ {40}\r\n" + body + "\r\n", maxLine: 30, maxLit: 40, wantN: 8 + 30, wantErr: ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			wantN := tt.wantN
			if wantN < 0 {
				wantN = len(in)
			}
			ref := &refScanner{maxLine: tt.maxLine, maxLit: tt.maxLit}
			if n, failed := ref.run(in); n != wantN || failed != (tt.wantErr != nil) {
				t.Fatalf("reference passed %d bytes (failed=%v), want %d (failed=%v)", n, failed, wantN, tt.wantErr != nil)
			}
			for _, chunk := range []int{1, 2, 3, 7, 64, 4096} {
				out, err := runCapped(in, tt.maxLine, tt.maxLit, chunk, uint64(chunk))
				if got, want := len(out), wantN; got != want {
					t.Fatalf("chunk %d: passed %d bytes, want %d (err %v)", chunk, got, want, err)
				}
				if !bytes.Equal(out, in[:wantN]) {
					t.Fatalf("chunk %d: output differs from input prefix", chunk)
				}
				if tt.wantErr == nil && err != nil {
					t.Fatalf("chunk %d: err = %v, want nil", chunk, err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("chunk %d: err = %v, want %v", chunk, err, tt.wantErr)
				}
			}
		})
	}
}

func TestCappedReaderErrorIsSticky(t *testing.T) {
	cr := &cappedReader{r: strings.NewReader("* OK " + strings.Repeat("a", 100) + "\r\n* OK\r\n"), s: newScanner(10, 10)}
	buf := make([]byte, 8)
	var err error
	for range 100 {
		if _, err = cr.Read(buf); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("first error = %v, want ErrLineTooLong", err)
	}
	if n, err := cr.Read(buf); n != 0 || !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("Read after failure = %d, %v; want 0, ErrLineTooLong", n, err)
	}
}

// FuzzCappedReader checks the fast scanner against the byte-at-a-time
// reference on arbitrary input, limits and read splits: same number of
// bytes passed, same verdict, output always a prefix of the input, never a
// panic.
func FuzzCappedReader(f *testing.F) {
	f.Add([]byte("* OK ready\r\n"), uint16(64), uint16(64), uint64(1))
	f.Add([]byte("* 1 FETCH (UID 7 BODY[] {5}\r\nhello)\r\nA1 OK done\r\n"), uint16(32), uint16(5), uint64(2))
	f.Add([]byte("* 1 FETCH (BODY[] {6}\r\nhello)\r\n"), uint16(32), uint16(5), uint64(3))
	f.Add([]byte("* 1 FETCH (ENVELOPE (\"a\\\"b\r\nc\" NIL))\r\n"), uint16(20), uint16(5), uint64(4))
	f.Add([]byte("* OK [FOO\r\nbar] x\r\n+ {3}\r\n"), uint16(8), uint16(5), uint64(5))
	f.Add([]byte("A1 NO [AUTHENTICATIONFAILED] no\r\n* 2 FETCH (X ~{3+} \nabc)\n"), uint16(40), uint16(3), uint64(6))
	f.Fuzz(func(t *testing.T, data []byte, maxLine, maxLit uint16, seed uint64) {
		ml := int(maxLine) + 1
		ref := &refScanner{maxLine: ml, maxLit: int64(maxLit)}
		wantN, wantFail := ref.run(data)
		out, err := runCapped(data, ml, int64(maxLit), 1+int(seed%97), seed)
		if len(out) != wantN || (err != nil) != wantFail {
			t.Fatalf("passed %d bytes (err %v), reference passed %d (failed=%v)", len(out), err, wantN, wantFail)
		}
		if !bytes.Equal(out, data[:len(out)]) {
			t.Fatal("output is not a prefix of the input")
		}
		if err != nil && !errors.Is(err, ErrLineTooLong) && !errors.Is(err, ErrLiteralTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
		// classify must never decide early what more bytes would change.
		head := data[:min(len(data), headCap)]
		if nl := bytes.IndexByte(head, '\n'); nl >= 0 {
			head = head[:nl]
		}
		final := len(head) < len(data) || len(head) == headCap
		if kind, codeAt, ok := classify(head, final); ok {
			for i := range len(head) {
				if k, c, ok := classify(head[:i], false); ok && (k != kind || c != codeAt) {
					t.Fatalf("classify(%q) = %d,%d early, %d,%d on %q", head[:i], k, c, kind, codeAt, head)
				}
			}
		}
		// Without braces no literal exists, so a limit above the input
		// length can never trip.
		if ml >= len(data) && bytes.IndexByte(data, '{') < 0 && err != nil {
			t.Fatalf("error %v on %d bytes with no literal and line limit %d", err, len(data), ml)
		}
	})
}

// catchUpStream builds n FETCH responses of a body of size bytes each, as a
// server answers a UID FETCH during catch-up.
func catchUpStream(n, size int) []byte {
	line := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusm", 1) + "\r\n"
	body := strings.Repeat(line, size/len(line)+1)[:size]
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "* %d FETCH (UID %d FLAGS (\\Seen) ENVELOPE (\"Mon, 1 Jan 2024 00:00:00 +0000\" \"Subject %d\" ((\"A\" NIL \"a\" \"example.com\")) NIL NIL NIL NIL NIL NIL \"<%d@example.com>\") BODY[] {%d}\r\n", i+1, i+1, i, i, size)
		b.WriteString(body)
		b.WriteString(")\r\n")
	}
	b.WriteString("A1 OK UID FETCH completed\r\n")
	return b.Bytes()
}

func benchScan(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := newScanner(1<<20, 64<<20)
		// go-imap reads through a 4 KiB bufio.Reader.
		for off := 0; off < len(data); off += 4096 {
			end := min(off+4096, len(data))
			if _, err := s.scan(data[off:end]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCappedReader measures scanner throughput on a catch-up of 27 KB
// messages (mostly literal bytes) and on line-only traffic (every byte
// scanned).
func BenchmarkCappedReader(b *testing.B) {
	b.Run("catchup-27KB", func(b *testing.B) { benchScan(b, catchUpStream(200, 27000)) })
	b.Run("lines-only", func(b *testing.B) {
		var buf bytes.Buffer
		for i := range 50000 {
			fmt.Fprintf(&buf, "* %d FETCH (UID %d FLAGS (\\Seen \\Answered) MODSEQ (%d) RFC822.SIZE 27000)\r\n", i+1, i+1, i*3)
		}
		benchScan(b, buf.Bytes())
	})
	b.Run("quoted-envelopes", func(b *testing.B) {
		var buf bytes.Buffer
		for i := range 20000 {
			fmt.Fprintf(&buf, "* %d FETCH (UID %d ENVELOPE (\"Mon, 1 Jan 2024 00:00:00 +0000\" \"Re: quarterly \\\"numbers\\\" %d\" ((\"Alice\" NIL \"alice\" \"example.com\")) NIL NIL ((\"Bob\" NIL \"bob\" \"example.org\")) NIL NIL NIL \"<%d@example.com>\"))\r\n", i+1, i+1, i, i)
		}
		benchScan(b, buf.Bytes())
	})
}
