package imapconn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ErrNoStartTLS is returned by Dial in starttls mode when the server does
// not advertise STARTTLS. Nothing secret has been sent.
var ErrNoStartTLS = errors.New("server does not offer STARTTLS; refusing to send credentials in cleartext")

// ErrPreauth is returned by Dial when the server greets a cleartext
// connection with PREAUTH. In starttls mode RFC 9051 §7.1.4 requires closing
// it: the server would skip the TLS upgrade, so the session could be a
// man-in-the-middle's. In none mode the operator asked for a login, and a
// PREAUTH there means something else answers. Only implicit TLS accepts
// PREAUTH (the certificate was verified first).
var ErrPreauth = errors.New("server sent PREAUTH on a cleartext connection; refusing it")

// stoodInGreeting is served to go-imap after STARTTLS: go-imap expects a
// greeting before anything else, and the server sends none on the TLS
// layer. Having no CAPABILITY code, it makes go-imap ask for capabilities
// again over TLS, as RFC 9051 §6.2.1 requires.
const stoodInGreeting = "* OK [X-MAILSYNC] TLS established\r\n"

// startTLS runs the cleartext start of a STARTTLS connection by hand and
// returns the TLS connection. go-imap's NewStartTLS would wrap TLS around the
// net.Conn we give it, putting the capped reader and the tracer below the
// encryption where they see ciphertext. Doing it here also refuses, before
// any credential is at stake, a PREAUTH greeting, a server without
// STARTTLS, and bytes sent after the STARTTLS answer (they would be read as
// if TLS had protected them: the response injection of CVE-2011-0411).
func startTLS(ctx context.Context, raw net.Conn, o *Options, tr *tracer, cfg *tls.Config) (*tls.Conn, error) {
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := raw.SetDeadline(time.Now().Add(o.CommandTimeout)); err != nil {
		return nil, err
	}
	p := &preTLS{
		conn: raw,
		br:   bufio.NewReader(&cappedReader{r: raw, s: newScanner(o.MaxLineBytes, o.MaxLiteralBytes)}),
		tr:   tr,
		max:  o.MaxLineBytes,
	}
	err := p.negotiate()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, handshakeError(o, err)
	}
	tr.note("TLS established")
	return tc, nil
}

// preTLS is the cleartext conversation before STARTTLS.
type preTLS struct {
	conn net.Conn
	br   *bufio.Reader
	tr   *tracer
	max  int
}

func (p *preTLS) negotiate() error {
	greeting, err := p.readLine()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	word, rest := cutWord(strings.TrimPrefix(greeting, "* "))
	if !strings.HasPrefix(greeting, "* ") {
		word = ""
	}
	var caps map[string]bool
	switch word {
	case "OK":
		if code, ok := strings.CutPrefix(rest, "[CAPABILITY "); ok {
			caps = parseCaps(code[:max(strings.IndexByte(code, ']'), 0)])
		}
	case "PREAUTH":
		return ErrPreauth
	case "BYE":
		return fmt.Errorf("server refused the connection: %s", clip(rest))
	default:
		return fmt.Errorf("greeting: unexpected %q", clip(greeting))
	}
	if caps == nil {
		untagged, err := p.command("P1", "CAPABILITY")
		if err != nil {
			return fmt.Errorf("capability: %w", err)
		}
		caps = map[string]bool{}
		for _, l := range untagged {
			if w, rest := cutWord(l); w == "CAPABILITY" {
				caps = parseCaps(rest)
			}
		}
	}
	if !caps["STARTTLS"] {
		return ErrNoStartTLS
	}
	if _, err := p.command("P2", "STARTTLS"); err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	if p.br.Buffered() > 0 {
		return errors.New("starttls: server sent data after its STARTTLS answer; refusing it")
	}
	return nil
}

// command sends "tag cmd" and returns the untagged lines (without "* ")
// that came before the tagged answer, which must be OK.
func (p *preTLS) command(tag, cmd string) ([]string, error) {
	line := tag + " " + cmd + "\r\n"
	if _, err := p.conn.Write([]byte(line)); err != nil {
		return nil, err
	}
	p.tr.fromClient([]byte(line))
	var untagged []string
	for range 1000 { // a few lines are expected; a server babbling on is broken
		l, err := p.readLine()
		if err != nil {
			return nil, err
		}
		if u, ok := strings.CutPrefix(l, "* "); ok {
			untagged = append(untagged, u)
			continue
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if status, text := cutWord(rest); status != "OK" {
				return nil, fmt.Errorf("server answered %s %s", status, clip(text))
			}
			return untagged, nil
		}
		return nil, fmt.Errorf("unexpected %q", clip(l))
	}
	return nil, errors.New("too many lines before the answer")
}

// readLine reads one line, without its CRLF.
func (p *preTLS) readLine() (string, error) {
	var line []byte
	for {
		frag, err := p.br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > p.max {
			return "", fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, p.max)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
	p.tr.fromServer(line)
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 0 && line[len(line)-1] == '}' {
		return "", errors.New("unexpected literal before STARTTLS")
	}
	return string(line), nil
}

// cutWord splits s at its first space and upper-cases the first word.
func cutWord(s string) (word, rest string) {
	word, rest, _ = strings.Cut(s, " ")
	return strings.ToUpper(word), rest
}

func parseCaps(s string) map[string]bool {
	caps := map[string]bool{}
	for _, c := range strings.Fields(s) {
		caps[strings.ToUpper(c)] = true
	}
	return caps
}

// clip shortens server text quoted in errors.
func clip(s string) string {
	const n = 200
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
