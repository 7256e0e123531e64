package matcher

import (
	"context"

	"github.com/mailsync/mailsync/sync/sink"
)

// Directory looks up CRM records. Implementations must be safe for
// concurrent use.
type Directory interface {
	// LookupEmails returns the records for each address (normalised,
	// lower-case); missing addresses are simply absent from the map. A
	// non-nil error is transient: the caller retries the message later.
	LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error)
	// LookupDomains returns the company records for each domain (normalised,
	// lower-case, Unicode form); missing domains are absent from the map. A
	// non-nil error is transient, as for LookupEmails.
	LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error)
}

// ThreadIndex knows which messages were already logged and to which records.
// The store implements it over its Message-ID index.
type ThreadIndex interface {
	// ThreadRecords returns the records linked to the first of messageIDs
	// (ordered most relevant first: In-Reply-To, then References from the
	// newest) that was already logged, or nil when none was. IDs carry no
	// angle brackets. A non-nil error is transient.
	ThreadRecords(ctx context.Context, messageIDs []string) ([]sink.Record, error)
}
