package smtpfront

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsync/mailsync/sync/outbound"
)

// maxAuthFailures closes a session after this many failed logins, which
// slows password guessing to a reconnect per try.
const maxAuthFailures = 3

// session is one CRM connection. go-smtp calls its methods from the
// connection's goroutine, one at a time.
type session struct {
	s        *Server
	remote   string
	account  string // set by a successful AUTH
	failures int
	rcpts    []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if ss.account != "" {
			return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Already authenticated"}
		}
		if identity != "" && identity != username {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authorization identity must be empty or the username"}
		}
		ok, err := ss.s.creds.Check(username, password)
		if err != nil {
			// The last good file is still in use; say once per try why
			// the file itself is not (never the secret).
			ss.s.log.Error("smtp front credentials file", "err", err)
		}
		if !ok {
			ss.failures++
			ss.s.log.Warn("smtp front login refused", "account", username, "remote", ss.remote, "failures", ss.failures)
			if ss.failures >= maxAuthFailures {
				return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many failed logins, closing connection"}
			}
			return smtp.ErrAuthFailed
		}
		ss.account = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.account == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required (AUTH PLAIN as the account id)"}
	}
	if ok, wait := ss.s.rate.allow(ss.account); !ok {
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
			Message: fmt.Sprintf("Rate limit of %d messages per minute for account %s reached; try again in %s", ss.s.cfg.RatePerAccount, ss.account, wait.Round(time.Second))}
	}
	// MAIL FROM is not used: the account's own server gets the From
	// header's address, the only one it would accept anyway.
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if !ss.s.enter() {
		_, _ = io.Copy(io.Discard, r) // go-smtp wants the data consumed
		return reply(outbound.ErrClosed)
	}
	defer ss.s.busy.Done()
	data, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp's 552 for a message over SIZE, or the connection's error
	}
	log := ss.s.log.With("account", ss.account, "remote", ss.remote)
	msgID := outbound.RawMessageID(data)
	if msgID != "" {
		log = log.With("message_id", msgID)
	}
	// Detached from the connection, as the send API does: a CRM hanging up
	// mid-submission must not leave the outcome unknown. Stop cuts it.
	ctx, cancel := context.WithTimeout(ss.s.ctx, sendTimeout)
	defer cancel()
	mail := outbound.RawMail{Data: data, Rcpts: ss.rcpts}
	if ss.s.deps.Linker != nil && msgID != "" {
		lctx, lcancel := context.WithTimeout(ctx, linkTimeout)
		mail.Records, err = ss.s.deps.Linker.LinkSent(lctx, ss.account, msgID)
		lcancel()
		if err != nil {
			log.Warn("smtp front: the CRM could not tell the message's records; sending it unlinked", "err", err)
		}
	}
	res, err := ss.s.deps.Sender.SendRaw(ctx, ss.account, mail)
	if err != nil {
		reply := reply(err)
		log.Warn("smtp front: send failed", "reply_code", reply.Code, "err", err)
		return reply
	}
	log.Info("smtp front: message accepted", "recipients", len(ss.rcpts), "replay", res.IdempotentReplay, "key", res.Key)
	// go-smtp sends an *SMTPError as the reply whatever its code; a 250
	// saying what happened beats its generic "queued", since the mail is
	// already submitted upstream, not queued here.
	if res.IdempotentReplay {
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: oneLine("Already sent as <" + res.MessageID + ">; not sent again")}
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: oneLine("Sent as <" + res.MessageID + ">, copy in " + orNone(res.SentFolder))}
}

func orNone(folder string) string {
	if folder == "" {
		return "the server's Sent folder"
	}
	return folder
}

func (ss *session) Reset() { ss.rcpts = nil }

func (ss *session) Logout() error { return nil }

// reply maps a send error to the SMTP answer: 5xx when trying again cannot
// help, 4xx when it may, and 250 when the mail went out although its Sent
// copy failed (the daemon finishes that part, see Sender.OnUnfinished; a
// 4xx would make the CRM
// resubmit, and a failure report would be wrong). Texts never hold a secret:
// outbound errors carry none.
func reply(err error) *smtp.SMTPError {
	e := func(code int, class, subject, detail int, msg string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{class, subject, detail}, Message: oneLine(msg)}
	}
	var fe *outbound.FieldError
	var se *outbound.SMTPError
	var ce *outbound.SentCopyError
	var oe *outbound.OutcomeUnknownError
	var ie *outbound.IMAPError
	switch {
	case errors.As(err, &ce):
		return e(250, 2, 0, 0, "sent; its Sent copy will be filed later")
	case errors.As(err, &fe):
		if strings.HasPrefix(fe.Field, "to") {
			return e(550, 5, 1, 3, "Bad recipient address: "+fe.Reason)
		}
		return e(554, 5, 6, 0, "Message refused: "+err.Error())
	case errors.Is(err, outbound.ErrTooLarge):
		return e(552, 5, 3, 4, err.Error())
	case errors.Is(err, outbound.ErrUnknownAccount), errors.Is(err, outbound.ErrCannotSend):
		return e(554, 5, 7, 0, err.Error())
	case errors.As(err, &oe):
		// Sending again could deliver it twice; only a person can tell.
		return e(554, 5, 0, 0, err.Error())
	case errors.Is(err, outbound.ErrInProgress):
		return e(451, 4, 3, 0, "The same message is being sent right now; try again later")
	case errors.Is(err, outbound.ErrClosed):
		return e(421, 4, 3, 2, "mailsync is shutting down; try again later")
	case errors.As(err, &se):
		if se.Temporary() {
			return e(451, 4, 4, 1, "Upstream temporarily unavailable, nothing was sent: "+err.Error())
		}
		return e(554, 5, 0, 0, "Upstream refused, nothing was sent: "+err.Error())
	case errors.As(err, &ie):
		return e(451, 4, 4, 1, "Mailbox server unavailable: "+err.Error())
	}
	return e(451, 4, 3, 0, "Local error; try again later")
}

// oneLine keeps a reply on one line: go-smtp would send a multi-line
// message as a multi-line reply, which is fine, but error texts may hold
// a stray CR.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
