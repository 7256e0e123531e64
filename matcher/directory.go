package matcher

import (
	"context"
	"time"
)

// Kind is the kind of a CRM record.
type Kind string

// Record kinds known to the matcher.
const (
	KindContact Kind = "contact"
	KindLead    Kind = "lead"
	KindCompany Kind = "company"
	KindDeal    Kind = "deal"
)

// Valid reports whether k is one of the known record kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindContact, KindLead, KindCompany, KindDeal:
		return true
	}
	return false
}

// Deal is a deal attached to a contact or company record.
type Deal struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Open      bool      `json:"open"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Record is one CRM record as a Directory returns it. Records returned by a
// Directory are shared: callers must treat them as read-only.
type Record struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Email is the address the record was found by (contacts and leads).
	Email string `json:"email,omitempty"`
	// Company is the ID of the company record a contact or lead belongs to.
	Company string `json:"company,omitempty"`
	// CompanyName is the company's display name, when the directory knows it.
	CompanyName string `json:"company_name,omitempty"`
	// Domain is the domain a company record was found by.
	Domain string `json:"domain,omitempty"`
	// Deals lists the deals of a contact or company, open or not.
	Deals []Deal `json:"deals,omitempty"`
}

// Key identifies a record independently of how it was found: "kind:id".
func (r Record) Key() string { return string(r.Kind) + ":" + r.ID }

// Directory looks up CRM records. Implementations must be safe for
// concurrent use.
type Directory interface {
	// LookupEmails returns the records for each address (normalised,
	// lower-case); missing addresses are simply absent from the map. A
	// non-nil error is transient: the caller retries the message later.
	LookupEmails(ctx context.Context, emails []string) (map[string][]Record, error)
	// LookupDomains returns the company records for each domain (normalised,
	// lower-case, Unicode form); missing domains are absent from the map. A
	// non-nil error is transient, as for LookupEmails.
	LookupDomains(ctx context.Context, domains []string) (map[string][]Record, error)
}

// ThreadIndex knows which messages were already logged and to which records.
// The store implements it over its Message-ID index.
type ThreadIndex interface {
	// ThreadRecords returns the records linked to the first of messageIDs
	// (ordered most relevant first: In-Reply-To, then References from the
	// newest) that was already logged, or nil when none was. IDs carry no
	// angle brackets. A non-nil error is transient.
	ThreadRecords(ctx context.Context, messageIDs []string) ([]Record, error)
}
