package imapconn

import (
	"net"
	"sync"
	"time"
)

// wire is the net.Conn handed to go-imap's client. It sits above TLS, so it
// sees the plaintext protocol:
//
//   - reads go through the capped scanner, then the tracer;
//   - writes go through the tracer;
//   - deadlines: go-imap sets its own (imapclient.Client.setReadTimeout: 30 s
//     per response once its first byte arrived, 5 min per streamed literal,
//     cleared between responses; 30 s per command write) and Conn.Do sets
//     one per command. A plain net.Conn keeps only the last call, so
//     go-imap's clear after each response would cancel ours. wire keeps both
//     and applies the earlier;
//   - prefix holds bytes served before the network's: the greeting we stand
//     in for after STARTTLS (see startTLS).
type wire struct {
	net.Conn          // the TLS or TCP connection below
	raw      net.Conn // the TCP connection, closed to abort at once
	sc       *scanner
	tr       *tracer
	prefix   []byte // read-side only

	mu       sync.Mutex
	libRead  time.Time
	libWrite time.Time
	cmd      time.Time
	limitErr error
}

func newWire(c, raw net.Conn, sc *scanner, tr *tracer, prefix []byte) *wire {
	return &wire{Conn: c, raw: raw, sc: sc, tr: tr, prefix: prefix}
}

// Read returns server bytes up to the first one that breaks a size limit,
// then the limit error, which makes go-imap drop the connection.
func (w *wire) Read(p []byte) (int, error) {
	if len(w.prefix) > 0 {
		// Our own bytes: scanned so the scanner's state stays in step,
		// but not traced as if the server had sent them.
		n := copy(p, w.prefix)
		w.prefix = w.prefix[n:]
		k, err := w.sc.scan(p[:n])
		return k, err
	}
	n, err := w.Conn.Read(p)
	if k, serr := w.sc.scan(p[:n]); serr != nil {
		w.mu.Lock()
		w.limitErr = serr
		w.mu.Unlock()
		n, err = k, serr
	}
	w.tr.fromServer(p[:n])
	return n, err
}

// Write sends client bytes and traces what was sent.
func (w *wire) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	w.tr.fromClient(p[:n])
	return n, err
}

// Close closes the TCP connection without a TLS close_notify, which could
// block for seconds on a peer that stopped reading; LOGOUT is the polite
// goodbye.
func (w *wire) Close() error {
	return w.raw.Close()
}

// SetDeadline records go-imap's deadline for both directions.
func (w *wire) SetDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.libRead, w.libWrite = t, t
	return w.applyLocked()
}

// SetReadDeadline records go-imap's read deadline.
func (w *wire) SetReadDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.libRead = t
	return w.applyLocked()
}

// SetWriteDeadline records go-imap's write deadline.
func (w *wire) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.libWrite = t
	return w.applyLocked()
}

// setCommandDeadline sets (or, with the zero time, clears) the deadline of
// the command in progress.
func (w *wire) setCommandDeadline(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cmd = t
	_ = w.applyLocked() // fails only once closed, which Do notices
}

func (w *wire) applyLocked() error {
	if err := w.Conn.SetReadDeadline(earliest(w.libRead, w.cmd)); err != nil {
		return err
	}
	return w.Conn.SetWriteDeadline(earliest(w.libWrite, w.cmd))
}

// limitError returns the size-limit error that ended reading, if any.
func (w *wire) limitError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.limitErr
}

// earliest returns the earlier of two deadlines, the zero time meaning none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero(), a.Before(b):
		return a
	}
	return b
}
