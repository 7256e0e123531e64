package outbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/imapconn"
)

// copyRef is where a Sent copy is.
type copyRef struct {
	folder      string
	uidValidity uint32
	uid         uint32 // 0 when the server reported none and a search found none
}

// withIMAP runs fn on a fresh connection for acct and logs out after.
func (s *Sender) withIMAP(ctx context.Context, acct *config.Account, fn func(conn *imapconn.Conn) error) error {
	conn, err := s.dial(ctx, acct)
	if err != nil {
		return &IMAPError{Err: err}
	}
	err = fn(conn)
	// LOGOUT is a courtesy; its failure does not change the outcome.
	_ = conn.Logout(context.WithoutCancel(ctx))
	if err != nil {
		return &IMAPError{Err: err}
	}
	return nil
}

// sentFolder returns the mailbox for Sent copies: smtp.sent_folder, else
// the folder with the \Sent SPECIAL-USE attribute (RFC 6154), else one
// named "Sent" in any case, else "Sent". The answer is cached per account
// until the configuration changes.
func (s *Sender) sentFolder(ctx context.Context, conn *imapconn.Conn, acct *config.Account) (string, error) {
	if acct.SMTP.SentFolder != "" {
		return acct.SMTP.SentFolder, nil
	}
	s.mu.Lock()
	name, ok := s.sentCache[acct.ID]
	s.mu.Unlock()
	if ok {
		return name, nil
	}
	var list []*imap.ListData
	err := conn.Do(ctx, "list", func(c *imapclient.Client) error {
		var opts *imap.ListOptions
		if conn.Caps().Has(imap.CapSpecialUse) {
			opts = &imap.ListOptions{ReturnSpecialUse: true}
		}
		var err error
		list, err = c.List("", "*", opts).Collect()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("find the sent folder: %w", err)
	}
	name = pickSentFolder(list)
	s.mu.Lock()
	s.sentCache[acct.ID] = name
	s.mu.Unlock()
	return name, nil
}

func pickSentFolder(list []*imap.ListData) string {
	for _, l := range list {
		for _, a := range l.Attrs {
			if strings.EqualFold(string(a), string(imap.MailboxAttrSent)) {
				return l.Mailbox
			}
		}
	}
	for _, l := range list {
		if strings.EqualFold(l.Mailbox, "Sent") {
			return l.Mailbox
		}
	}
	return "Sent"
}

// appendCopy files msg in folder as \Seen, dated date, and returns where it
// went. Servers with UIDPLUS (RFC 4315) say so in APPENDUID; for the rest
// the copy is found again by its Message-ID.
func (s *Sender) appendCopy(ctx context.Context, conn *imapconn.Conn, folder, messageID string, msg []byte, date time.Time) (copyRef, error) {
	ref := copyRef{folder: folder}
	// The literal may be large: allow 1 s per MiB on top of the command
	// timeout, as the worker does for body fetches.
	timeout := s.cmdTimeout() + time.Duration(len(msg)>>20)*time.Second
	err := conn.DoTimeout(ctx, "append", timeout, func(c *imapclient.Client) error {
		cmd := c.Append(folder, int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: date})
		_, werr := cmd.Write(msg)
		cerr := cmd.Close()
		data, err := cmd.Wait()
		if err != nil {
			return err
		}
		if err := errors.Join(werr, cerr); err != nil {
			return err
		}
		ref.uid, ref.uidValidity = uint32(data.UID), data.UIDValidity
		return nil
	})
	if err != nil {
		return ref, fmt.Errorf("append to %q: %w", folder, err)
	}
	if ref.uid != 0 && ref.uidValidity != 0 {
		return ref, nil
	}
	found, ok, err := s.findCopy(ctx, conn, folder, messageID)
	if err != nil || !ok {
		// The copy is there; only its UID is unknown. The folder worker
		// adds the provenance when it syncs the folder.
		return ref, nil
	}
	return found, nil
}

// findCopy looks for a message with the Message-ID in folder (EXAMINE, so
// nothing changes) and returns the first match.
func (s *Sender) findCopy(ctx context.Context, conn *imapconn.Conn, folder, messageID string) (copyRef, bool, error) {
	ref := copyRef{folder: folder}
	var uids []imap.UID
	err := conn.Do(ctx, "search sent", func(c *imapclient.Client) error {
		sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("examine %q: %w", folder, err)
		}
		ref.uidValidity = sel.UIDValidity
		if sel.NumMessages == 0 {
			return nil
		}
		// HEADER search is a substring match (RFC 9051 §6.4.4); the
		// brackets keep "1@x" from matching "11@x".
		data, err := c.UIDSearch(&imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + messageID + ">"}},
		}, nil).Wait()
		if err != nil {
			return fmt.Errorf("uid search header message-id in %q: %w", folder, err)
		}
		uids = data.AllUIDs()
		return nil
	})
	if err != nil || len(uids) == 0 {
		return ref, false, err
	}
	ref.uid = uint32(uids[0])
	return ref, true, nil
}
