package imapconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const fakePassword = "hunter2-fake"

// heapBound is the most a hostile stream may make the client allocate.
const heapBound = 64 << 20

// allocatedDuring returns the bytes allocated (by every goroutine) while f
// ran. TotalAlloc only grows, so unlike HeapInuse it cannot be hidden by a
// collection; a client that buffered the stream would show it in full.
func allocatedDuring(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// stream writes n bytes of b in 64 KiB writes, stopping when the client
// goes away.
func stream(fc *fakeConn, b byte, n int64) {
	chunk := bytes.Repeat([]byte{b}, 64<<10)
	for sent := int64(0); sent < n; sent += int64(len(chunk)) {
		if _, err := fc.Write(chunk[:min(int64(len(chunk)), n-sent)]); err != nil {
			return
		}
	}
}

func fakeOptions(fs *fakeServer) Options {
	return Options{Host: fs.host, Port: fs.port, TLS: TLSNone, Username: "alice", Auth: password(fakePassword)}
}

func TestHostileUnterminatedLine(t *testing.T) {
	fs := startFake(t, func(fc *fakeConn) {
		if fc.send("* OK hi\r\n* ") {
			stream(fc, 'a', 256<<20)
		}
	})
	var err error
	alloc := allocatedDuring(func() { _, err = Dial(context.Background(), fakeOptions(fs)) })
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("Dial error = %v, want ErrLineTooLong", err)
	}
	if !strings.Contains(err.Error(), fs.host) {
		t.Fatalf("error %q does not name the server", err)
	}
	if alloc > heapBound {
		t.Fatalf("client allocated %d MiB on a 256 MiB line, want < %d MiB", alloc>>20, heapBound>>20)
	}
}

// fetchBody fetches BODY[] of message 1 inside Do.
func fetchBody(ctx context.Context, c *Conn) ([]byte, error) {
	var body []byte
	err := c.Do(ctx, "fetch", func(cl *imapclient.Client) error {
		if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
			return err
		}
		section := &imap.FetchItemBodySection{}
		msgs, err := cl.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return err
		}
		if len(msgs) != 1 {
			return fmt.Errorf("got %d messages", len(msgs))
		}
		body = msgs[0].FindBodySection(section)
		return nil
	})
	return body, err
}

// literalServer answers FETCH with a literal of announced bytes, of which it
// sends sent.
func literalServer(t *testing.T, announced, sent int64) *fakeServer {
	return startFake(t, func(fc *fakeConn) {
		if !fc.send("* OK hi\r\n") {
			return
		}
		fc.serveBasic(func(tag, cmd, _ string) bool {
			if cmd != "FETCH" {
				return false
			}
			if !fc.send(fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n", announced)) {
				return false
			}
			stream(fc, 'x', sent)
			return fc.send(")\r\n" + tag + " OK done\r\n")
		})
	})
}

func TestHostileHugeLiteral(t *testing.T) {
	fs := literalServer(t, 1<<30, 1<<30)
	opts := fakeOptions(fs)
	opts.MaxLiteralBytes = 16 << 20
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	alloc := allocatedDuring(func() { _, err = fetchBody(context.Background(), c) })
	if !errors.Is(err, ErrLiteralTooLarge) {
		t.Fatalf("fetch error = %v, want ErrLiteralTooLarge", err)
	}
	if !strings.Contains(err.Error(), "fetch: ") {
		t.Fatalf("error %q does not name the command", err)
	}
	if alloc > heapBound {
		t.Fatalf("client allocated %d MiB on a 1 GiB literal, want < %d MiB", alloc>>20, heapBound>>20)
	}
	waitClosed(t, c)
}

func TestLiteralJustUnderCapPasses(t *testing.T) {
	const limit = 1 << 20
	fs := literalServer(t, limit-1, limit-1)
	opts := fakeOptions(fs)
	opts.MaxLiteralBytes = limit
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	body, err := fetchBody(context.Background(), c)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got, want := len(body), limit-1; got != want || bytes.Count(body, []byte{'x'}) != want {
		t.Fatalf("body has %d bytes, want %d of 'x'", got, want)
	}
}

func waitClosed(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open")
	}
}

// silentServer logs in, then answers NOOP with an untagged EXISTS only.
func silentServer(t *testing.T) *fakeServer {
	return startFake(t, func(fc *fakeConn) {
		if !fc.send("* OK hi\r\n") {
			return
		}
		fc.serveBasic(func(_, cmd, _ string) bool {
			// The EXISTS makes go-imap clear its read deadline after the
			// response, which must not clear the command's.
			return cmd == "NOOP" && fc.send("* 3 EXISTS\r\n")
		})
	})
}

func TestSilentServerTimesOut(t *testing.T) {
	fs := silentServer(t)
	exists := make(chan uint32, 1)
	opts := fakeOptions(fs)
	opts.CommandTimeout = 300 * time.Millisecond
	opts.UnilateralDataHandler = &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case exists <- *d.NumMessages:
				default:
				}
			}
		},
	}
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	err = c.Do(context.Background(), "noop", func(cl *imapclient.Client) error { return cl.Noop().Wait() })
	if !errors.Is(err, ErrCommandTimeout) {
		t.Fatalf("Do error = %v, want ErrCommandTimeout", err)
	}
	if want := "imap " + c.Addr() + ": noop: no response in 300ms"; err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	waitClosed(t, c)
	select {
	case n := <-exists:
		if n != 3 {
			t.Fatalf("unilateral EXISTS = %d, want 3", n)
		}
	default:
		t.Fatal("unilateral EXISTS not delivered to the handler")
	}
}

func TestDoContextCancelCloses(t *testing.T) {
	fs := silentServer(t)
	opts := fakeOptions(fs)
	opts.CommandTimeout = time.Minute
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err = c.Do(ctx, "noop", func(cl *imapclient.Client) error { return cl.Noop().Wait() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do error = %v, want context.Canceled", err)
	}
	waitClosed(t, c)
}

func TestStartTLSRefusedWithoutCapability(t *testing.T) {
	greetings := map[string]string{
		"caps in greeting":   "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n",
		"caps asked for":     "* OK hi\r\n",
		"preauth greeting":   "* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome back\r\n",
		"lowercase preauth":  "* preauth hi\r\n",
		"bye greeting":       "* BYE busy\r\n",
		"garbage greeting":   "HTTP/1.1 400 Bad Request\r\n",
		"injected after tls": "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n",
	}
	wants := map[string]error{"preauth greeting": ErrPreauth, "lowercase preauth": ErrPreauth, "caps in greeting": ErrNoStartTLS, "caps asked for": ErrNoStartTLS}
	for name, greeting := range greetings {
		t.Run(name, func(t *testing.T) {
			fs := startFake(t, func(fc *fakeConn) {
				if !fc.send(greeting) {
					return
				}
				fc.serveBasic(func(tag, cmd, _ string) bool {
					// Answer STARTTLS with a response smuggled behind it.
					return cmd == "STARTTLS" && fc.send(tag+" OK go\r\n* 1 EXISTS\r\n")
				})
			})
			opts := fakeOptions(fs)
			opts.TLS = TLSStartTLS
			_, err := Dial(context.Background(), opts)
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if want := wants[name]; want != nil && !errors.Is(err, want) {
				t.Fatalf("Dial error = %v, want %v", err, want)
			}
			got := fs.received()
			if strings.Contains(got, "LOGIN") || strings.Contains(got, "AUTHENTICATE") || strings.Contains(got, fakePassword) {
				t.Fatalf("server received credentials: %q", got)
			}
		})
	}
}

func TestPreauthRefusedInCleartext(t *testing.T) {
	fs := startFake(t, func(fc *fakeConn) {
		if fc.send("* PREAUTH hi\r\n") {
			fc.serveBasic(nil)
		}
	})
	_, err := Dial(context.Background(), fakeOptions(fs))
	if !errors.Is(err, ErrPreauth) {
		t.Fatalf("Dial error = %v, want ErrPreauth", err)
	}
}

func TestPreauthAcceptedOverImplicitTLS(t *testing.T) {
	ca := newTestCA(t)
	cfg := ca.serverConfig(t)
	fs := startFake(t, func(fc *fakeConn) {
		tc := tls.Server(fc.Conn, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		fc.Conn = tc
		fc.br.Reset(fc.recorder())
		if fc.send("* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n") {
			fc.serveBasic(nil)
		}
	})
	c, err := Dial(context.Background(), Options{Host: fs.host, Port: fs.port, CAFile: ca.caFile, Username: "alice", Auth: password(fakePassword)})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got := fs.received(); strings.Contains(got, "LOGIN") {
		t.Fatalf("client logged in after PREAUTH: %q", got)
	}
}

func TestPasswordUsesPlainWhenLoginDisabled(t *testing.T) {
	for _, tt := range []struct {
		name     string
		answer   string
		wantAuth bool // IsAuthFailure
		wantErr  bool
	}{
		{"accepted", "OK welcome", false, false},
		{"rejected", "NO [AUTHENTICATIONFAILED] bad credentials", true, true},
		{"plain no", "NO go away", true, true},
		{"unavailable", "NO [UNAVAILABLE] try later", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantPayload := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + fakePassword))
			fs := startFake(t, func(fc *fakeConn) {
				if !fc.send("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGINDISABLED AUTH=PLAIN] hi\r\n") {
					return
				}
				fc.serveBasic(func(tag, cmd, rest string) bool {
					if cmd != "AUTHENTICATE" {
						return false
					}
					if rest != "PLAIN "+wantPayload {
						return fc.send(tag + " BAD unexpected payload\r\n")
					}
					return fc.send(tag + " " + tt.answer + "\r\n")
				})
			})
			var trace bytes.Buffer
			opts := fakeOptions(fs)
			opts.Trace = &trace
			c, err := Dial(context.Background(), opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial error = %v, want error %v", err, tt.wantErr)
			}
			if c != nil {
				_ = c.Close()
			}
			if got := IsAuthFailure(err); got != tt.wantAuth {
				t.Fatalf("IsAuthFailure(%v) = %v, want %v", err, got, tt.wantAuth)
			}
			if strings.Contains(fs.received(), "LOGIN ") {
				t.Fatal("client sent LOGIN despite LOGINDISABLED")
			}
			if strings.Contains(trace.String(), wantPayload) {
				t.Fatalf("trace shows the SASL payload:\n%s", trace.String())
			}
		})
	}
}
