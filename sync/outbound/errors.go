package outbound

import (
	"errors"
	"fmt"
	"strings"
)

// Errors Send returns, matched with errors.Is. The HTTP handler maps each to
// a status code; the Poller treats the permanent ones (see Permanent) as
// failures to report and the rest as reasons to try again later.
var (
	// ErrUnknownAccount: no account has the id (404).
	ErrUnknownAccount = errors.New("unknown account")
	// ErrCannotSend: the account has no smtp.host (409).
	ErrCannotSend = errors.New("account cannot send")
	// ErrOutcomeUnknown: an earlier attempt with the same idempotency key
	// may or may not have been submitted, and its Message-ID is not in the
	// Sent folder (409). Sending again could deliver the mail twice, so it
	// is never done under the same key. Returned as *OutcomeUnknownError.
	ErrOutcomeUnknown = errors.New("send outcome unknown")
	// ErrInProgress: another request with the same idempotency key is being
	// handled right now (409).
	ErrInProgress = errors.New("a send with this idempotency key is in progress")
	// ErrKeyReused: the idempotency key was used before for a different
	// request (422, as draft-ietf-httpapi-idempotency-key-header §2.7).
	ErrKeyReused = errors.New("idempotency key was already used for a different request")
	// ErrTooLarge: the composed message exceeds MaxMessageBytes (413).
	ErrTooLarge = errors.New("message too large")
	// ErrClosed: the sender is shutting down (503); try again later.
	ErrClosed = errors.New("mailsync is shutting down; try again later")
)

// FieldError is a bad request; Field is the JSON name of the offending
// field, with an index for list items ("to[1]", "records[0].id").
type FieldError struct {
	Field  string
	Reason string
}

// Error reads "to[1]: not an email address".
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// SMTPError is a failed submission. It names the server and the step and
// carries the server's reply; it never holds a credential (go-smtp's AUTH
// errors carry only the server's reply).
type SMTPError struct {
	// Server is host:port.
	Server string
	// Stage is what failed: connect, tls, starttls, auth, mail from,
	// rcpt to <addr>, data, size.
	Stage string
	// Code is the SMTP reply code, 0 when the server sent none (network).
	Code int
	// Reply is the server's reply text, with its enhanced status code.
	Reply string
	// Err is the underlying error when there was no reply.
	Err error
}

// Error reads "smtp smtp.example.com:465: rcpt to <a@b>: 550 5.1.1 no such user".
func (e *SMTPError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("smtp %s: %s: %d %s", e.Server, e.Stage, e.Code, strings.TrimSpace(e.Reply))
	}
	return fmt.Sprintf("smtp %s: %s: %v", e.Server, e.Stage, e.Err)
}

// Unwrap returns the underlying error.
func (e *SMTPError) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed: a 4xx reply
// or no reply at all.
func (e *SMTPError) Temporary() bool { return e.Code == 0 || e.Code/100 == 4 }

// SentCopyError says the message was submitted but filing the Sent copy or
// recording it failed. Retrying with the same idempotency key finishes the
// job without submitting again.
type SentCopyError struct {
	MessageID string
	Err       error
}

// Error says the mail went out and what is left to do.
func (e *SentCopyError) Error() string {
	return fmt.Sprintf("message <%s> was sent, but filing or recording its Sent copy failed (retry with the same idempotency key to finish; it will not be sent again): %v", e.MessageID, e.Err)
}

// Unwrap returns the underlying error.
func (e *SentCopyError) Unwrap() error { return e.Err }

// IMAPError is a failure talking to the account's IMAP server (the Sent
// folder): transient as far as the sender can tell.
type IMAPError struct {
	Err error
}

// Error is the wrapped error's, which names the server ("imap host:port: ...").
func (e *IMAPError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *IMAPError) Unwrap() error { return e.Err }

// OutcomeUnknownError is ErrOutcomeUnknown with what an operator needs to
// check by hand.
type OutcomeUnknownError struct {
	MessageID string
	// Folder is where the copy was looked for; empty when it could not
	// be checked.
	Folder string
	// Err is why the first attempt's outcome is unknown, if known.
	Err error
}

// Error explains the choice and the way out.
func (e *OutcomeUnknownError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "send outcome unknown: an earlier attempt with this idempotency key was interrupted after handing message <%s> to the SMTP server", e.MessageID)
	if e.Err != nil {
		fmt.Fprintf(&b, " (%v)", e.Err)
	}
	if e.Folder != "" {
		fmt.Fprintf(&b, ", and the message is not in %q", e.Folder)
	}
	b.WriteString("; check the Sent folder or with a recipient, and send again with a new idempotency key if it did not arrive")
	return b.String()
}

// Is makes errors.Is(err, ErrOutcomeUnknown) true.
func (e *OutcomeUnknownError) Is(target error) bool { return target == ErrOutcomeUnknown }

// Unwrap returns the underlying error.
func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same request cannot help: a bad
// request, an unknown account or one that cannot send, a reused key, an
// unknown outcome, a message too large, or a 5xx SMTP reply. Network
// trouble, 4xx replies and IMAP failures are not permanent.
func Permanent(err error) bool {
	var fe *FieldError
	if errors.As(err, &fe) {
		return true
	}
	for _, e := range []error{ErrUnknownAccount, ErrCannotSend, ErrKeyReused, ErrOutcomeUnknown, ErrTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	var se *SMTPError
	return errors.As(err, &se) && !se.Temporary()
}
