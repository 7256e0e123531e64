package outbound

import (
	"context"
	"log/slog"
	stdsync "sync"
	"time"
)

// QueuedMail is one message waiting in a CRM's outbox.
type QueuedMail struct {
	// ID is the outbox's id for the mail; it is the send's idempotency
	// key, so it must be stable and unique within the account.
	ID      string
	Account string
	// Request is the mail; its IdempotencyKey is replaced by ID.
	Request Request
}

// Outbox is the capability of CRMs that queue mail for mailsync to send
// (a sink adapter may implement it; the daemon finds it by type
// assertion). The Poller calls it from one goroutine.
type Outbox interface {
	// Pending returns the mail waiting to be sent, in the order to send
	// it. An error is taken as transient: the poller asks again at the
	// next interval.
	Pending(ctx context.Context) ([]QueuedMail, error)
	// Ack records that the mail was sent, with its result, and stops
	// returning it from Pending. It must be idempotent: after an Ack that
	// failed, the next poll sends again, gets the first result back
	// (IdempotentReplay) and acks again. An error is logged and retried
	// that way.
	Ack(ctx context.Context, id string, res *Result) error
	// Fail records that the mail cannot be sent as it stands (err says why
	// and holds no secret) and stops returning it from Pending. It is
	// called only for permanent errors (see Permanent); transient ones are
	// retried at the next interval without a call. An error is logged and
	// the mail is tried again at the next poll.
	Fail(ctx context.Context, id string, err error) error
}

// Submitter sends one message; *Sender is the implementation.
type Submitter interface {
	Send(ctx context.Context, account string, req Request) (*Result, error)
}

// Poller drains an Outbox through a Submitter every interval. It owns one
// goroutine between Start and Stop.
type Poller struct {
	sender   Submitter
	outbox   Outbox
	interval time.Duration
	log      *slog.Logger

	cancel context.CancelFunc
	wg     stdsync.WaitGroup
}

// MinPollInterval is the shortest interval NewPoller accepts; shorter ones
// are raised to it.
const MinPollInterval = time.Second

// NewPoller returns a stopped poller.
func NewPoller(s Submitter, ob Outbox, interval time.Duration, log *slog.Logger) *Poller {
	if interval < MinPollInterval {
		interval = MinPollInterval
	}
	if log == nil {
		log = slog.Default()
	}
	return &Poller{sender: s, outbox: ob, interval: interval, log: log.With("component", "outbox")}
}

// Start polls at once and then every interval until Stop or ctx ends.
func (p *Poller) Start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.run(ctx)
	}()
}

// Stop ends polling and waits for the send in progress, if any, to
// return. The send's own context is cancelled too; a send interrupted
// mid-submission is resolved at the next start (see state.go).
func (p *Poller) Stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.wg.Wait()
}

func (p *Poller) run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll sends what is pending once and reports how many were acked.
func (p *Poller) poll(ctx context.Context) (acked int) {
	mails, err := p.outbox.Pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("outbox: list pending mail", "err", err)
		}
		return 0
	}
	for _, m := range mails {
		if ctx.Err() != nil {
			return acked
		}
		log := p.log.With("account", m.Account, "outbox_id", m.ID)
		req := m.Request
		req.IdempotencyKey = m.ID
		res, err := p.sender.Send(ctx, m.Account, req)
		switch {
		case err == nil:
			if aerr := p.outbox.Ack(ctx, m.ID, res); aerr != nil {
				log.Warn("outbox: ack failed; the next poll acks again", "err", aerr)
				continue
			}
			acked++
		case ctx.Err() != nil:
			return acked
		case Permanent(err):
			log.Warn("outbox: mail cannot be sent", "err", err)
			if ferr := p.outbox.Fail(ctx, m.ID, err); ferr != nil {
				log.Warn("outbox: reporting the failure failed", "err", ferr)
			}
		default:
			log.Info("outbox: send failed; retrying at the next poll", "err", err)
		}
	}
	return acked
}
