package imapconn

import (
	"bytes"
	"io"
	"sync"
)

// traceLineMax bounds one traced line; message bodies pass through the
// trace as lines too, and a trace is for reading, not for archiving.
const traceLineMax = 2048

// tracer writes the IMAP conversation to w, one "C: " or "S: " line per
// protocol line, with credentials redacted: the arguments of LOGIN, the
// initial response of AUTHENTICATE and every client line after either
// command until the server answers its tag (LOGIN arguments may follow as
// literals, SASL responses follow as continuation lines).
//
// Reader and writer goroutines both feed it, so it locks.
type tracer struct {
	mu      sync.Mutex
	w       io.Writer
	client  traceDir
	server  traceDir
	authTag []byte // tag of a LOGIN/AUTHENTICATE awaiting its answer
}

// traceDir assembles one direction's bytes into lines.
type traceDir struct {
	prefix  string
	line    []byte
	dropped int
}

func newTracer(w io.Writer) *tracer {
	return &tracer{
		w:      w,
		client: traceDir{prefix: "C: "},
		server: traceDir{prefix: "S: "},
	}
}

// note writes a line of our own, such as "-- TLS established".
func (t *tracer) note(s string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = io.WriteString(t.w, "-- "+s+"\n")
}

// fromClient records bytes written to the server.
func (t *tracer) fromClient(p []byte) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.feed(&t.client, p, t.clientLine)
}

// fromServer records bytes read from the server.
func (t *tracer) fromServer(p []byte) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.feed(&t.server, p, t.serverLine)
}

func (t *tracer) feed(d *traceDir, p []byte, emit func(line []byte) []byte) {
	for len(p) > 0 {
		nl := bytes.IndexByte(p, '\n')
		part := p
		if nl >= 0 {
			part = p[:nl]
		}
		room := traceLineMax - len(d.line)
		if len(part) > room {
			d.dropped += len(part) - room
			part = part[:room]
		}
		d.line = append(d.line, part...)
		if nl < 0 {
			return
		}
		out := emit(bytes.TrimSuffix(d.line, []byte("\r")))
		buf := make([]byte, 0, len(d.prefix)+len(out)+24)
		buf = append(buf, d.prefix...)
		buf = append(buf, out...)
		if d.dropped > 0 {
			buf = append(buf, " [...]"...)
		}
		buf = append(buf, '\n')
		_, _ = t.w.Write(buf)
		d.line, d.dropped = d.line[:0], 0
		p = p[nl+1:]
	}
}

// clientLine returns what to show of a client line.
func (t *tracer) clientLine(line []byte) []byte {
	if t.authTag != nil {
		return []byte("[redacted]")
	}
	fields := bytes.SplitN(line, []byte(" "), 4)
	if len(fields) < 2 {
		return line
	}
	cmd := string(bytes.ToUpper(fields[1]))
	switch cmd {
	case "LOGIN":
		t.authTag = append([]byte(nil), fields[0]...)
		return []byte(string(fields[0]) + " LOGIN [redacted]")
	case "AUTHENTICATE":
		t.authTag = append([]byte(nil), fields[0]...)
		out := string(fields[0]) + " AUTHENTICATE"
		if len(fields) > 2 {
			out += " " + string(fields[2])
		}
		if len(fields) > 3 {
			out += " [redacted]"
		}
		return []byte(out)
	}
	return line
}

// serverLine returns what to show of a server line and ends redaction when
// the server answers the authentication command.
func (t *tracer) serverLine(line []byte) []byte {
	if t.authTag != nil && bytes.HasPrefix(line, t.authTag) &&
		len(line) > len(t.authTag) && line[len(t.authTag)] == ' ' {
		t.authTag = nil
	}
	return line
}
