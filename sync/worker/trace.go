package worker

import (
	"bytes"
	"context"
	"log/slog"
	stdsync "sync"
)

// traceWriter turns the IMAP wire trace into debug log lines, one per
// protocol line, so tracing goes wherever the logs go.
type traceWriter struct {
	log *slog.Logger
	mu  stdsync.Mutex
	buf []byte
}

// maxTraceLine keeps a message body from becoming one enormous log line.
const maxTraceLine = 512

func (w *traceWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxTraceLine {
				w.emit(w.buf[:maxTraceLine])
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *traceWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) > maxTraceLine {
		line = append(line[:maxTraceLine:maxTraceLine], "…"...)
	}
	w.log.Log(context.Background(), slog.LevelDebug, "imap", "wire", string(line))
}
