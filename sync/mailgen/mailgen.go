// Package mailgen generates deterministic, realistic business mail for
// tests, benchmarks and the demo: conversations with a cast of external
// contacts, threads with quoted history, HTML alternatives, attachments,
// newsletters, auto-replies and internal mail, all as raw RFC 5322 bytes
// with CRLF line endings. It also offers a fixed set of malformed messages
// (Malformed) and the cast as a CRM directory (Directory).
//
// Bodies may use charset ISO-8859-1: readers built on go-message must
// import github.com/emersion/go-message/charset to decode them.
package mailgen

import (
	"math/rand/v2"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// Direction tells whether a message reaches an owner or leaves one.
type Direction int

// Directions.
const (
	// Any lets the generator choose, by Options.Direction and
	// Options.OutboundShare.
	Any Direction = iota
	// Inbound mail is addressed to an owner and belongs in its INBOX.
	Inbound
	// Outbound mail is sent by an owner and belongs in its Sent folder.
	Outbound
)

// String returns "any", "inbound" or "outbound".
func (d Direction) String() string {
	switch d {
	case Inbound:
		return "inbound"
	case Outbound:
		return "outbound"
	}
	return "any"
}

// Kind is what a message is, as ground truth for matcher tests.
type Kind int

// Kinds.
const (
	// KindConversation is person-to-person mail with an external contact
	// or stranger.
	KindConversation Kind = iota + 1
	// KindInternal is mail between an owner and colleagues or other
	// owners at the owners' domain.
	KindInternal
	// KindNewsletter is bulk list mail (List-Id, Precedence: bulk).
	KindNewsletter
	// KindAutoReply is an automatic reply (RFC 3834 Auto-Submitted).
	KindAutoReply
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case KindConversation:
		return "conversation"
	case KindInternal:
		return "internal"
	case KindNewsletter:
		return "newsletter"
	case KindAutoReply:
		return "autoreply"
	}
	return "unknown"
}

// Options configures a Generator. The zero value is usable: every empty
// field takes the default named in its comment.
type Options struct {
	// Owners are the mailboxes the mail is generated for. Default: Acme
	// Sales <sales@acme.example>.
	Owners []mail.Address
	// Companies is the external cast. Default: DefaultCompanies().
	// Companies without contacts are ignored; when neither Companies nor
	// Strangers has anyone left, the defaults are used.
	Companies []Company
	// Strangers write from freemail without a company. Default:
	// DefaultStrangers().
	Strangers []Contact
	// Colleagues are internal staff at the first owner's domain. Default:
	// five built-in people at that domain.
	Colleagues []Contact
	// Newsletters are bulk senders. Default: DefaultNewsletters().
	Newsletters []Newsletter
	// AvgSize is the target average message size in bytes, reached by
	// sizing attachments. Default 27000. Targets below about 8 KB are
	// approached but not reached, because plain mail with realistic
	// headers is about that big.
	AvgSize int
	// Direction fixes the direction of Generate(Spec{}); Any mixes them
	// by OutboundShare.
	Direction Direction
	// OutboundShare is the share of outbound mail when mixing. Default
	// 0.3.
	OutboundShare float64
	// End is the newest Date. Default 2026-06-01 12:00 UTC, fixed so that
	// output depends only on the seed.
	End time.Time
	// Window is how far before End the first Date lies. Default 90 days.
	Window time.Duration
	// Count is how many messages the dates are spread over. Messages
	// after Count all get dates near End. Default 1000.
	Count int
}

func (o Options) withDefaults() Options {
	if len(o.Owners) == 0 {
		o.Owners = []mail.Address{{Name: "Acme Sales", Address: "sales@acme.example"}}
	}
	if o.Companies == nil {
		o.Companies = DefaultCompanies()
	}
	// Companies without people cannot send or receive mail.
	o.Companies = slices.DeleteFunc(slices.Clone(o.Companies), func(c Company) bool { return len(c.Contacts) == 0 })
	if o.Strangers == nil {
		o.Strangers = DefaultStrangers()
	}
	if len(o.Companies) == 0 && len(o.Strangers) == 0 {
		// Conversations need someone on the other side.
		o.Companies = DefaultCompanies()
	}
	if o.Colleagues == nil {
		o.Colleagues = defaultColleagues(domainOf(o.Owners[0].Address))
	}
	if o.Newsletters == nil {
		o.Newsletters = DefaultNewsletters()
	}
	if o.AvgSize <= 0 {
		o.AvgSize = 27_000
	}
	if o.OutboundShare <= 0 {
		o.OutboundShare = 0.3
	}
	if o.End.IsZero() {
		o.End = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	}
	if o.Window <= 0 {
		o.Window = 90 * 24 * time.Hour
	}
	if o.Count <= 0 {
		o.Count = 1000
	}
	return o
}

// Spec constrains one generated message. The zero Spec leaves every
// choice to the generator.
type Spec struct {
	// Direction forces inbound or outbound mail; Any uses the Options.
	Direction Direction
	// Owner picks the owner address; empty picks one at random. An
	// address that is not an owner is treated as empty.
	Owner string
	// Date overrides the scheduled Date; zero uses the schedule.
	Date time.Time
}

// Message is one generated message with its ground truth.
type Message struct {
	// Raw is the complete RFC 5322 message with CRLF line endings.
	Raw []byte
	// ID is the Message-ID without angle brackets.
	ID string
	// InReplyTo is the parent's Message-ID without angle brackets, or "".
	InReplyTo string
	// References are the thread's earlier Message-IDs, oldest first.
	References []string
	// Date is the Date header's time.
	Date time.Time
	// Subject is the decoded subject.
	Subject string
	// From, To and Cc are lower-case addresses.
	From   string
	To, Cc []string
	// Kind and Direction classify the message.
	Kind      Kind
	Direction Direction
	// Owner is the owner the message was generated for: its sender when
	// outbound, a recipient when inbound. Other owners may be recipients
	// too (check To and Cc when routing to mailboxes).
	Owner string
	// CompanyID, ContactID and DealID are the CRM records the message is
	// about ("" when none): what a correct matcher should find.
	CompanyID, ContactID, DealID string
}

// Generator produces messages. It is not safe for concurrent use.
type Generator struct {
	opts    Options
	rng     *rand.Rand
	salt    string
	seq     int
	slot    int
	threads []*thread
	size    sizeControl
	ownTZ   *time.Location
}

// New returns a generator whose output depends only on seed and opts.
func New(seed int64, opts Options) *Generator {
	g := &Generator{
		opts:  opts.withDefaults(),
		rng:   rand.New(rand.NewPCG(uint64(seed), 0x6d61696c67656e)),
		ownTZ: time.FixedZone("", -4*3600),
	}
	g.salt = hex(g.rng.Uint64())[:8]
	g.size.target = g.opts.AvgSize
	return g
}

// Next returns the raw bytes of the next message; see Generate.
func (g *Generator) Next() []byte { return g.Generate(Spec{}).Raw }

// Generate returns the next message under the constraints of s.
func (g *Generator) Generate(s Spec) Message {
	g.seq++
	owner := g.pickOwner(s.Owner)
	dir := s.Direction
	if dir == Any {
		dir = g.opts.Direction
	}
	if dir == Any {
		dir = Inbound
		if g.rng.Float64() < g.opts.OutboundShare {
			dir = Outbound
		}
	}
	date := s.Date
	if date.IsZero() {
		date = g.nextDate()
	}
	d := g.compose(owner, dir, date)
	raw := g.render(d)
	g.size.record(len(raw), d.attachBytes)
	return d.message(raw)
}

func (g *Generator) pickOwner(addr string) mail.Address {
	for _, o := range g.opts.Owners {
		if strings.EqualFold(o.Address, addr) {
			return o
		}
	}
	return g.opts.Owners[g.rng.IntN(len(g.opts.Owners))]
}

// nextDate spreads dates evenly over the window, jittered within each
// slot so that later messages (replies) always get later dates.
func (g *Generator) nextDate() time.Time {
	step := g.opts.Window / time.Duration(g.opts.Count)
	start := g.opts.End.Add(-g.opts.Window)
	i := g.slot
	g.slot++
	if i >= g.opts.Count {
		return g.opts.End.Add(-time.Duration(g.rng.IntN(60)) * time.Second)
	}
	jitter := time.Duration(g.rng.Int64N(int64(step) + 1))
	return start.Add(step*time.Duration(i) + jitter).Truncate(time.Second)
}

func (g *Generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// chance reports true with probability p.
func (g *Generator) chance(p float64) bool { return g.rng.Float64() < p }

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

func firstName(name string) string {
	if f, _, ok := strings.Cut(name, " "); ok {
		return f
	}
	return name
}

const hexDigits = "0123456789abcdef"

func hex(v uint64) string {
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// sizeControl steers attachment sizes so the running average size meets
// the target: the attachment budget is what the target leaves after the
// observed non-attachment average, spread over the observed share of
// messages with attachments, plus a correction for the running deficit.
type sizeControl struct {
	target      int
	n           int
	total       int64
	attachTotal int64
	withAttach  int
}

func (c *sizeControl) record(size, attach int) {
	c.n++
	c.total += int64(size)
	c.attachTotal += int64(attach)
	if attach > 0 {
		c.withAttach++
	}
}

// attachBudget returns the encoded attachment bytes for a message that
// carries attachments, or 0 when the target leaves no room.
func (c *sizeControl) attachBudget() int {
	nonAttach := 9000.0
	if c.n > 0 {
		nonAttach = float64(c.total-c.attachTotal) / float64(c.n)
	}
	share := (float64(c.withAttach) + 3) / (float64(c.n) + 20)
	const horizon = 40.0
	deficit := float64(c.target)*float64(c.n) - float64(c.total)
	budget := (float64(c.target)-nonAttach)/share + deficit/(share*horizon)
	return int(min(max(budget, 0), 4<<20))
}
