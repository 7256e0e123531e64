package outbound

import (
	"context"
	"errors"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// fakeOutbox is a CRM outbox in memory.
type fakeOutbox struct {
	mu       stdsync.Mutex
	pending  []QueuedMail
	acked    map[string]*Result
	failed   map[string]error
	ackErrs  int // the next ackErrs Acks fail
	listErr  error
	polled   chan struct{}
	ackCalls int
}

func newFakeOutbox(mails ...QueuedMail) *fakeOutbox {
	return &fakeOutbox{pending: mails, acked: map[string]*Result{}, failed: map[string]error{}, polled: make(chan struct{}, 100)}
}

func (o *fakeOutbox) Pending(context.Context) ([]QueuedMail, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case o.polled <- struct{}{}:
	default:
	}
	if o.listErr != nil {
		return nil, o.listErr
	}
	return slices.Clone(o.pending), nil
}

func (o *fakeOutbox) remove(id string) {
	o.pending = slices.DeleteFunc(o.pending, func(m QueuedMail) bool { return m.ID == id })
}

func (o *fakeOutbox) Ack(_ context.Context, id string, res *Result) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ackCalls++
	if o.ackErrs > 0 {
		o.ackErrs--
		return errors.New("crm unavailable")
	}
	o.acked[id] = res
	o.remove(id)
	return nil
}

func (o *fakeOutbox) Fail(_ context.Context, id string, err error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed[id] = err
	o.remove(id)
	return nil
}

func (o *fakeOutbox) state() (pending []string, acked, failed map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	acked, failed = map[string]bool{}, map[string]bool{}
	for _, m := range o.pending {
		pending = append(pending, m.ID)
	}
	for id := range o.acked {
		acked[id] = true
	}
	for id := range o.failed {
		failed[id] = true
	}
	return pending, acked, failed
}

func queued(t *testing.T, id, to string) QueuedMail {
	body := sendBody("ignored")
	body["to"] = []string{to}
	delete(body, "cc")
	delete(body, "bcc")
	return QueuedMail{ID: id, Account: accountID, Request: requestOf(t, body)}
}

func TestPollerSendsAcksFailsAndRetries(t *testing.T) {
	r := newRig(t, rigOptions{smtpTLS: "none"})
	bad := queued(t, "q-bad", "x@customer.example")
	bad.Request.Text, bad.Request.HTML = "", "" // permanent: no body
	ob := newFakeOutbox(
		queued(t, "q-ok", "bob@customer.example"),
		bad,
		queued(t, "q-later", "greylisted@customer.example"),
		queued(t, "q-refused", "gone@customer.example"),
	)
	r.peer.setRcptReply("greylisted@customer.example", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "try later"})
	r.peer.setRcptReply("gone@customer.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	ob.ackErrs = 1 // the first Ack is lost

	p := NewPoller(r.sender, ob, time.Second, testLogger(t))
	ctx := context.Background()
	p.poll(ctx)
	pending, acked, failed := ob.state()
	if !slices.Equal(pending, []string{"q-ok", "q-later"}) || len(acked) != 0 || !failed["q-bad"] || !failed["q-refused"] {
		t.Fatalf("after poll 1: pending %v, acked %v, failed %v; want q-ok (ack lost) and q-later pending, q-bad and q-refused failed",
			pending, acked, failed)
	}
	if n := len(r.peer.messages()); n != 1 {
		t.Fatalf("SMTP peer got %d messages, want 1", n)
	}

	r.peer.setRcptReply("greylisted@customer.example", nil)
	p.poll(ctx)
	pending, acked, _ = ob.state()
	if len(pending) != 0 || !acked["q-ok"] || !acked["q-later"] {
		t.Fatalf("after poll 2: pending %v, acked %v; want both acked", pending, acked)
	}
	ob.mu.Lock()
	replay := ob.acked["q-ok"].IdempotentReplay
	ob.mu.Unlock()
	if !replay {
		t.Error("q-ok was acked without IdempotentReplay: it should have been answered from the first send")
	}
	if n := len(r.peer.messages()); n != 2 {
		t.Errorf("SMTP peer got %d messages, want 2 (q-ok once, q-later once)", n)
	}
}

func TestPollerStartStop(t *testing.T) {
	ob := newFakeOutbox()
	ob.listErr = errors.New("crm down")
	p := NewPoller(fakeSubmitter{}, ob, time.Millisecond, testLogger(t))
	if p.interval != MinPollInterval {
		t.Errorf("interval = %v, want it raised to %v", p.interval, MinPollInterval)
	}
	p.Start(context.Background())
	select {
	case <-ob.polled:
	case <-time.After(30 * time.Second):
		t.Fatal("poller did not poll after Start")
	}
	p.Stop()
	// Stop waited for the goroutine: no poll happens after it.
	for len(ob.polled) > 0 {
		<-ob.polled
	}
	time.Sleep(MinPollInterval + 200*time.Millisecond) // one tick, had the goroutine survived
	if n := len(ob.polled); n != 0 {
		t.Errorf("%d polls after Stop", n)
	}
	p.Stop() // a second Stop is harmless
}

type fakeSubmitter struct{}

func (fakeSubmitter) Send(context.Context, string, Request) (*Result, error) {
	return nil, errors.New("not used")
}
