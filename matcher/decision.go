package matcher

import "github.com/mailsync/mailsync/sync/sink"

// Action is what the caller must do with a message.
type Action string

// Actions.
const (
	// Deliver: log the message to the CRM, linked to Decision.Records.
	Deliver Action = "deliver"
	// Exclude: the message must never be logged (private, internal, bulk,
	// blocked...).
	Exclude Action = "exclude"
	// Skip: the message is not captured under the account's capture mode;
	// it could be logged later if the user marks it.
	Skip Action = "skip"
)

// Direction of a message relative to the organisation.
type Direction string

// Directions.
const (
	Inbound  Direction = "inbound"  // from outside
	Outbound Direction = "outbound" // from an own address to outside
	Internal Direction = "internal" // every participant is own
)

// Reason codes. Exclusions first, then skips, then deliveries.
const (
	ReasonPrivateKeyword  = "private_keyword"
	ReasonPrivateFolder   = "private_folder"
	ReasonExcludedFolder  = "excluded_folder"
	ReasonBlocklist       = "blocklist"
	ReasonInternal        = "internal"
	ReasonBounce          = "bounce"
	ReasonAutoSubmitted   = "auto_submitted"
	ReasonAutoReply       = "auto_reply"
	ReasonReport          = "report"
	ReasonPrecedence      = "precedence"
	ReasonListID          = "list_id"
	ReasonListUnsubscribe = "list_unsubscribe"

	ReasonNotSelected = "not_selected" // selective mode, no marker
	ReasonNoMatch     = "no_match"     // matched mode, no record or intent

	ReasonMatched    = "matched"     // records linked
	ReasonIntent     = "intent"      // no record, but a record to create
	ReasonSelected   = "selected"    // the user marked the message
	ReasonCaptureAll = "capture_all" // capture mode all, nothing linked
)

// Reason is a machine code and a human explanation.
type Reason struct {
	Code string `json:"code"`
	Text string `json:"text"`
}

// Include says which parts of a message the caller may send to the CRM,
// following the account's privacy level. Participants and date always go.
type Include struct {
	Subject     bool `json:"subject"`
	Headers     bool `json:"headers"`
	Body        bool `json:"body"`
	Attachments bool `json:"attachments"`
}

// Intent asks the caller to create a record; the matcher never creates
// anything itself.
type Intent struct {
	Action string    `json:"action"` // "create"
	Kind   sink.Kind `json:"kind"`
	// Reason is why: unknown_sender, unknown_recipient, no_open_deal.
	Reason string            `json:"reason"`
	Fields map[string]string `json:"fields"`
}

// Participant is one address of the message as the matcher saw it.
type Participant struct {
	Role  Role   `json:"role"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
	// Key is the address used for comparisons and look-ups (plus folded
	// when configured).
	Key      string `json:"key"`
	Own      bool   `json:"own,omitempty"`
	Freemail bool   `json:"freemail,omitempty"`
	// Looked reports whether the directory was asked about Key; Records
	// is what it returned for the address, DomainRecords for its domain
	// (when the domain rule ran).
	Looked        bool          `json:"looked_up,omitempty"`
	Records       []sink.Record `json:"records,omitempty"`
	DomainRecords []sink.Record `json:"domain_records,omitempty"`
}

// Check is one exclusion as evaluated.
type Check struct {
	Name  string `json:"name"`
	Fired bool   `json:"fired"`
	// Off is set when the configuration keeps this class of mail.
	Off    bool   `json:"off,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Rule outcomes.
const (
	OutcomeFired   = "fired"
	OutcomeNoMatch = "no_match"
	OutcomeNotRun  = "not_run"
)

// RuleTrace is one rule as tried.
type RuleTrace struct {
	Rule    string `json:"rule"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// Decision is the matcher's verdict on one message, with everything needed
// to explain it.
type Decision struct {
	Account   string `json:"account,omitempty"`
	Folder    string `json:"folder,omitempty"`
	MessageID string `json:"message_id,omitempty"`

	Action    Action    `json:"action"`
	Reason    Reason    `json:"reason"`
	Direction Direction `json:"direction"`
	// Rule is the rule that fired, "" when none did.
	Rule string `json:"rule,omitempty"`
	// Records are the records to link, without duplicates; contacts and
	// companies carry no deals here, linked deals are records of their own.
	Records []sink.Record `json:"records,omitempty"`
	Intents []Intent      `json:"intents,omitempty"`

	Capture  string  `json:"capture"`
	Selected bool    `json:"selected,omitempty"`
	Privacy  string  `json:"privacy"`
	Include  Include `json:"include"`

	Participants []Participant `json:"participants,omitempty"`
	Exclusions   []Check       `json:"exclusions,omitempty"`
	Rules        []RuleTrace   `json:"rules,omitempty"`
	ParseErrors  []string      `json:"parse_errors,omitempty"`
}

// addRecord links r unless already linked. Deals are dropped from the copy:
// each linked deal is a record of its own.
func (d *Decision) addRecord(r sink.Record) bool {
	for _, have := range d.Records {
		if have.Kind == r.Kind && have.ID == r.ID {
			return false
		}
	}
	r.Deals = nil
	d.Records = append(d.Records, r)
	return true
}

// hasKind reports whether a record of kind k is linked.
func (d *Decision) hasKind(k sink.Kind) bool {
	for _, r := range d.Records {
		if r.Kind == k {
			return true
		}
	}
	return false
}

func includeFor(privacy string) Include {
	switch privacy {
	case PrivacyMetadata:
		return Include{Subject: true, Headers: true}
	case PrivacyHeaders:
		return Include{}
	}
	return Include{Subject: true, Headers: true, Body: true, Attachments: true}
}
