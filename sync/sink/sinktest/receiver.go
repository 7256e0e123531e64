package sinktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
	"github.com/mailsync/mailsync/sync/sink/webhook"
)

// Tolerance is how far a webhook-timestamp may be from the receiver's
// clock, as the Standard Webhooks spec recommends, against replays.
const Tolerance = 5 * time.Minute

// maxBody bounds a request body the receiver reads.
const maxBody = 64 << 20

// Step scripts the receiver's answer to the next Times requests that carry
// a valid signature. A Step with Status 0 accepts normally (useful to add a
// Delay).
type Step struct {
	Status int // answer with this status instead of accepting
	Times  int // requests this step answers; 0 means 1
	// RetryAfter, if set, is sent as a Retry-After header in seconds, or as
	// an HTTP-date if RetryAfterDate is set.
	RetryAfter     time.Duration
	RetryAfterDate bool
	Body           string        // response body for Status
	Delay          time.Duration // wait before answering
}

// Request is one attempt the receiver saw.
type Request struct {
	Time         time.Time
	ID           string // webhook-id
	Status       int    // what the receiver answered
	BadSignature bool   // rejected with 401
	Duplicate    bool   // an id already accepted: answered 200, not recorded again
	Scripted     bool   // answered by a Step
}

// Arrival is one accepted message.
type Arrival struct {
	Time       time.Time
	ActivityID string // the id the receiver answered with
	Message    *sink.Message
}

// Receiver is a fake CRM webhook endpoint on 127.0.0.1. It verifies
// Standard Webhooks signatures, dedupes on webhook-id, records what it
// accepted, and can be scripted to fail or stall. Accepted requests are
// answered 200 with {"id":"act-N"}; a duplicate gets the first one's id.
type Receiver struct {
	srv    *httptest.Server
	secret webhook.Secret
	stop   chan struct{} // closed at cleanup, ends Delays early

	mu       stdsync.Mutex
	script   []Step
	delay    time.Duration
	ids      map[string]string // webhook-id -> activity id
	arrivals []Arrival
	requests []Request
	bad      int
	dups     int
	changed  chan struct{} // closed and replaced on every arrival
}

// NewReceiver starts a receiver that checks signatures with secret (the
// whsec_ form or a raw string, as the webhook sink accepts). It stops when
// the test ends.
func NewReceiver(t testing.TB, secret string) *Receiver {
	t.Helper()
	s, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	r := &Receiver{
		secret:  s,
		stop:    make(chan struct{}),
		ids:     map[string]string{},
		changed: make(chan struct{}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("NewReceiver: listen: %v", err)
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	t.Cleanup(func() {
		close(r.stop)
		r.srv.Close()
	})
	return r
}

// URL is the endpoint to configure the webhook sink with.
func (r *Receiver) URL() string { return r.srv.URL + "/hooks/mailsync" }

// Script queues steps; requests after the last step are accepted.
func (r *Receiver) Script(steps ...Step) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range steps {
		if s.Times <= 0 {
			s.Times = 1
		}
		r.script = append(r.script, s)
	}
}

// SetDelay makes every request wait d before it is answered (a slow CRM).
func (r *Receiver) SetDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Keys returns how often each key was accepted; with dedupe working that
// is 1 for every key, whatever the number of attempts.
func (r *Receiver) Keys() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make(map[string]int, len(r.arrivals))
	for _, a := range r.arrivals {
		keys[a.Message.Key]++
	}
	return keys
}

// Inspect is Keys in the form RunContract wants.
func (r *Receiver) Inspect(*testing.T) map[string]int { return r.Keys() }

// Messages returns the accepted messages in arrival order.
func (r *Receiver) Messages() []Arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Arrival(nil), r.arrivals...)
}

// Requests returns every attempt, in arrival order.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// BadSignatures counts requests rejected for their signature or timestamp.
func (r *Receiver) BadSignatures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

// Duplicates counts requests for an id that had already been accepted.
func (r *Receiver) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups
}

// WaitFor waits until at least n messages were accepted, failing the test
// after timeout.
func (r *Receiver) WaitFor(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, ch := len(r.arrivals), r.changed
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("receiver: %d messages accepted after %s, want %d", got, timeout, n)
		}
	}
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("Webhook-Id")
	rec := Request{Time: now, ID: id}
	answer := func(status int) {
		rec.Status = status
		r.mu.Lock()
		r.requests = append(r.requests, rec)
		r.mu.Unlock()
	}

	ts, err := strconv.ParseInt(req.Header.Get("Webhook-Timestamp"), 10, 64)
	if err != nil || id == "" || now.Sub(time.Unix(ts, 0)).Abs() > Tolerance ||
		!webhook.Verify(r.secret, id, ts, body, req.Header.Get("Webhook-Signature")) {
		rec.BadSignature = true
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		answer(http.StatusUnauthorized)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}

	step, scripted, delay := r.next()
	if !r.sleep(req, delay) {
		answer(0) // the client gave up; nothing was answered
		return
	}
	if scripted {
		rec.Scripted = true
		answer(step.Status)
		if step.RetryAfter > 0 {
			v := strconv.Itoa(int(step.RetryAfter / time.Second))
			if step.RetryAfterDate {
				v = time.Now().Add(step.RetryAfter).UTC().Format(http.TimeFormat)
			}
			w.Header().Set("Retry-After", v)
		}
		w.WriteHeader(step.Status)
		io.WriteString(w, step.Body)
		return
	}

	m, err := jsonl.Unmarshal(body)
	if err != nil || m.Key != id {
		answer(http.StatusBadRequest)
		http.Error(w, fmt.Sprintf("body is not a message keyed %q", id), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	act, dup := r.ids[id]
	if dup {
		r.dups++
		rec.Duplicate = true
	} else {
		act = "act-" + strconv.Itoa(len(r.ids)+1)
		r.ids[id] = act
		r.arrivals = append(r.arrivals, Arrival{Time: now, ActivityID: act, Message: m})
		close(r.changed)
		r.changed = make(chan struct{})
	}
	rec.Status = http.StatusOK
	r.requests = append(r.requests, rec)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"id": act})
}

// next takes the scripted step for this request, if any, and the delay.
func (r *Receiver) next() (step Step, scripted bool, delay time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delay = r.delay
	if len(r.script) == 0 {
		return Step{}, false, delay
	}
	step = r.script[0]
	r.script[0].Times--
	if r.script[0].Times == 0 {
		r.script = r.script[1:]
	}
	if step.Delay > 0 {
		delay = step.Delay
	}
	return step, step.Status != 0, delay
}

// sleep waits d unless the client goes away or the receiver stops.
func (r *Receiver) sleep(req *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-req.Context().Done():
		return false
	case <-r.stop:
		return false
	}
}
