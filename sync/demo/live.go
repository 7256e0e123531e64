package demo

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/sync/mailgen"
)

// seed fills every user's INBOX and Sent to exactly inbox and sent
// messages, interleaving both directions so threads span the folders.
// Messages addressed to several users land in each of their mailboxes
// while there is room, which is what cross-mailbox de-duplication needs.
func (s *Server) seed(inbox, sent int) error {
	counts := map[string]map[string]int{}
	for _, a := range s.accounts {
		counts[a.addr.Address] = map[string]int{Inbox: 0, Sent: 0}
	}
	limit := map[string]int{Inbox: inbox, Sent: sent}
	// Every round adds at least one message while any folder has room, so
	// this bound is never reached; it only guards against a bug looping.
	for round := 0; round < 10*(inbox+sent); round++ {
		full := true
		for _, a := range s.accounts {
			c := counts[a.addr.Address]
			dir := mailgen.Inbound
			switch {
			case c[Inbox] >= inbox && c[Sent] >= sent:
				continue
			case c[Sent] < sent && (c[Inbox] >= inbox || c[Sent]*inbox < c[Inbox]*sent):
				dir = mailgen.Outbound
			}
			full = false
			m := s.gen.Generate(mailgen.Spec{Direction: dir, Owner: a.addr.Address})
			// Older mail has been read; the newest stays unread.
			var flags []imap.Flag
			if dir == mailgen.Outbound || c[Inbox] < inbox*3/4 {
				flags = []imap.Flag{imap.FlagSeen}
			}
			for _, d := range s.route(m) {
				if counts[d.user][d.mailbox] >= limit[d.mailbox] {
					continue
				}
				if err := s.appendTo(d.user, d.mailbox, m, flags); err != nil {
					return err
				}
				counts[d.user][d.mailbox]++
			}
		}
		if full {
			return nil
		}
	}
	return fmt.Errorf("seed demo mailboxes: not full after %d rounds", 10*(inbox+sent))
}

// delivery is one mailbox a message belongs in.
type delivery struct{ user, mailbox string }

// route returns where m belongs: the sender's Sent and each recipient's
// INBOX, for the demo users among them.
func (s *Server) route(m mailgen.Message) []delivery {
	var ds []delivery
	rcpts := append(slices.Clone(m.To), m.Cc...)
	for _, a := range s.accounts {
		if m.From == a.addr.Address {
			ds = append(ds, delivery{a.addr.Address, Sent})
		}
		if slices.Contains(rcpts, a.addr.Address) {
			ds = append(ds, delivery{a.addr.Address, Inbox})
		}
	}
	return ds
}

func (s *Server) appendTo(user, mailbox string, m mailgen.Message, flags []imap.Flag) error {
	a := s.account(user)
	// *bytes.Reader is an imap.LiteralReader (Read and Size).
	_, err := a.user.Append(mailbox, bytes.NewReader(m.Raw), &imap.AppendOptions{Time: m.Date, Flags: flags})
	if err != nil {
		return fmt.Errorf("append to %s %s: %w", user, mailbox, err)
	}
	return nil
}

// AppendLive starts a goroutine, owned by the server, that delivers a new
// realistic inbound message to a random user's INBOX every interval (5 s
// when every <= 0) until ctx is done or the server is closed. onAppend,
// if not nil, is called from that goroutine for each mailbox delivered
// to. Calling AppendLive after Close does nothing.
func (s *Server) AppendLive(ctx context.Context, every time.Duration, onAppend func(user, subject string)) {
	if every <= 0 {
		every = 5 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case <-t.C:
			}
			m := s.nextLive()
			for _, d := range s.route(m) {
				if d.mailbox != Inbox {
					continue
				}
				if err := s.appendTo(d.user, d.mailbox, m, nil); err != nil {
					s.logger.Warn("live append failed", "user", d.user, "err", err)
					continue
				}
				s.logger.Debug("live message appended", "user", d.user, "message_id", m.ID)
				if onAppend != nil {
					onAppend(d.user, m.Subject)
				}
			}
		}
	}()
}

// nextLive generates the next live message, dated now, for a random user.
func (s *Server) nextLive() mailgen.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	user := s.accounts[s.rng.IntN(len(s.accounts))].addr.Address
	return s.gen.Generate(mailgen.Spec{Direction: mailgen.Inbound, Owner: user, Date: s.now().Truncate(time.Second)})
}
