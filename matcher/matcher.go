package matcher

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mailsync/mailsync/sync/sink"
)

// Matcher decides, per message, whether and where to log it. It is safe for
// concurrent use; its configuration is fixed at New.
type Matcher struct {
	dir     Directory
	threads ThreadIndex

	foldPlus   bool
	own        []string
	free       *freemail
	blockAddr  map[string]bool
	blockDom   []string
	blockPat   []pattern
	privateKW  string
	logKW      string
	rules      []string
	tags       []*compiledTag
	dealPolicy string
	keep       Keep

	def       *policy
	policies  sync.Map // *AccountPolicy -> *policy
	npolicies atomic.Int32
}

// maxCachedPolicies bounds the compiled-policy cache, so a caller that builds
// a fresh AccountPolicy per message costs compile time, not memory.
const maxCachedPolicies = 1024

// New compiles cfg (regular expressions, lists) once. dir is required;
// threads may be nil, and the thread rule then never fires.
func New(cfg Config, dir Directory, threads ThreadIndex) (*Matcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dir == nil {
		return nil, errors.New("matcher: nil directory")
	}
	m := &Matcher{
		dir:        dir,
		threads:    threads,
		foldPlus:   cfg.FoldPlusAddresses,
		free:       newFreemail(cfg.Freemail),
		blockAddr:  map[string]bool{},
		privateKW:  strings.ToLower(cfg.PrivateKeyword),
		logKW:      strings.ToLower(cfg.LogKeyword),
		rules:      cfg.Rules,
		dealPolicy: cfg.DealPolicy,
		keep:       cfg.Keep,
	}
	if m.privateKW == "" {
		m.privateKW = strings.ToLower(DefaultPrivateKeyword)
	}
	if m.logKW == "" {
		m.logKW = strings.ToLower(DefaultLogKeyword)
	}
	if len(m.rules) == 0 {
		m.rules = DefaultRules
	}
	if m.dealPolicy == "" {
		m.dealPolicy = DealsMostRecent
	}
	for _, d := range cfg.OwnDomains {
		n, _ := NormalizeDomain(d)
		m.own = append(m.own, n)
	}
	for _, a := range cfg.Blocklist.Addresses {
		n, _ := NormalizeAddress(a)
		m.blockAddr[m.key(n)] = true
	}
	for _, d := range cfg.Blocklist.Domains {
		n, _ := NormalizeDomain(d)
		m.blockDom = append(m.blockDom, n)
	}
	for _, p := range cfg.Blocklist.Patterns {
		c, _ := compilePattern(p)
		m.blockPat = append(m.blockPat, c)
	}
	for _, t := range cfg.Tags {
		c, _ := compileTag(t)
		m.tags = append(m.tags, c)
	}
	m.def = m.compilePolicy(&AccountPolicy{})
	return m, nil
}

// key is the form of a normalised address used for comparison and look-up.
func (m *Matcher) key(addr string) string {
	if m.foldPlus {
		return FoldPlus(addr)
	}
	return addr
}

// policy is an AccountPolicy compiled with its defaults applied.
type policy struct {
	aliases       map[string]bool
	aliasDomains  []string
	capture       string
	privacy       string
	private       []string
	log           []string
	excluded      []string
	excludedRoles []string
	dealPolicy    string
	auto          AutoCreate
}

func (m *Matcher) policyFor(p *AccountPolicy) *policy {
	if p == nil {
		return m.def
	}
	if v, ok := m.policies.Load(p); ok {
		return v.(*policy)
	}
	c := m.compilePolicy(p)
	if m.npolicies.Add(1) <= maxCachedPolicies {
		m.policies.Store(p, c)
	}
	return c
}

func (m *Matcher) compilePolicy(p *AccountPolicy) *policy {
	c := &policy{
		aliases:       map[string]bool{},
		capture:       p.Capture,
		privacy:       p.Privacy,
		private:       p.PrivateFolders,
		log:           p.LogFolders,
		excluded:      p.ExcludedFolders,
		excludedRoles: p.ExcludedRoles,
		dealPolicy:    p.DealPolicy,
		auto:          p.AutoCreate,
	}
	for _, a := range p.Aliases {
		if d, ok := strings.CutPrefix(a, "@"); ok {
			n, _ := NormalizeDomain(d)
			c.aliasDomains = append(c.aliasDomains, n)
			continue
		}
		n, _ := NormalizeAddress(a)
		c.aliases[m.key(n)] = true
	}
	if c.capture == "" {
		c.capture = CaptureMatched
	}
	if c.privacy == "" {
		c.privacy = PrivacyFull
	}
	if c.excludedRoles == nil {
		c.excludedRoles = []string{"junk", "trash"}
	}
	if c.dealPolicy == "" {
		c.dealPolicy = m.dealPolicy
	}
	defaults := func(r *CreateRule, kind sink.Kind, name string) {
		if r.Kind == "" {
			r.Kind = string(kind)
		}
		if r.Source == "" {
			r.Source = "email"
		}
		if r.Name == "" {
			r.Name = name
		}
	}
	defaults(&c.auto.Lead, sink.KindLead, "{name}")
	defaults(&c.auto.Contact, sink.KindContact, "{name}")
	defaults(&c.auto.Deal, sink.KindDeal, "{subject}")
	return c
}

// Input is one message to match.
type Input struct {
	Msg     *Message
	Account string
	// Policy is the account's policy; nil means all defaults. A policy
	// must not be modified once passed to Match: it is compiled once and
	// cached by pointer.
	Policy *AccountPolicy
	Folder string
	// FolderRole is the folder's special use: inbox, sent, archive,
	// drafts, junk, trash, or "".
	FolderRole string
	// Keywords are the message's IMAP keywords and flags.
	Keywords []string
	// Body is the decoded text body, when the caller has it; only the tag
	// rule reads it.
	Body []byte
}

// state is one message on its way through a batch.
type state struct {
	in   *Input
	msg  *Message
	pol  *policy
	d    *Decision
	ext  []int // indices into d.Participants: external, distinct keys
	next int   // next rule to run
	done bool  // decided before the rules
}

// Match decides one message. The error is non-nil only when the directory
// or thread index failed; it is transient and the caller retries later.
func (m *Matcher) Match(ctx context.Context, in Input) (*Decision, error) {
	ds, err := m.MatchBatch(ctx, []Input{in})
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}

// MatchBatch decides several messages with one directory call for all their
// addresses and at most one more for the domains the domain rule needs. The
// error is non-nil only when a look-up failed, and then no decision is
// returned.
func (m *Matcher) MatchBatch(ctx context.Context, ins []Input) ([]*Decision, error) {
	states := make([]state, len(ins))
	out := make([]*Decision, len(ins))
	for i := range ins {
		m.prepare(&states[i], &ins[i])
		out[i] = states[i].d
	}
	emails, err := m.lookupEmails(ctx, states)
	if err != nil {
		return nil, err
	}
	var waiting []*state
	for i := range states {
		st := &states[i]
		if st.done {
			continue
		}
		m.attachEmails(st, emails)
		wait, err := m.runRules(ctx, st, nil)
		if err != nil {
			return nil, err
		}
		if wait {
			waiting = append(waiting, st)
		}
	}
	if len(waiting) > 0 {
		domains, err := m.lookupDomains(ctx, waiting)
		if err != nil {
			return nil, err
		}
		for _, st := range waiting {
			if _, err := m.runRules(ctx, st, domains); err != nil {
				return nil, err
			}
		}
	}
	for i := range states {
		m.finish(&states[i])
	}
	return out, nil
}

// prepare resolves participants and direction, then runs the exclusions and
// the capture pre-check; st.done is set when no rule needs to run.
func (m *Matcher) prepare(st *state, in *Input) {
	st.in = in
	st.msg = in.Msg
	if st.msg == nil {
		st.msg = &Message{ParseErrors: []string{"no message header"}}
	}
	st.pol = m.policyFor(in.Policy)
	d := &Decision{
		Account:     in.Account,
		Folder:      in.Folder,
		MessageID:   st.msg.MessageID,
		Capture:     st.pol.capture,
		Privacy:     st.pol.privacy,
		Include:     includeFor(st.pol.privacy),
		ParseErrors: st.msg.ParseErrors,
	}
	st.d = d
	m.participants(st)
	if m.exclusions(st) {
		st.done = true
		return
	}
	d.Selected = m.selected(st)
	if st.pol.capture == CaptureSelective && !d.Selected {
		d.Action = Skip
		d.Reason = Reason{ReasonNotSelected, fmt.Sprintf("capture mode selective and the message is neither flagged %s nor in a log folder", m.logKW)}
		st.done = true
	}
}

// participants fills d.Participants, st.ext and d.Direction.
func (m *Matcher) participants(st *state) {
	d, msg := st.d, st.msg
	n := len(msg.From) + len(msg.Sender) + len(msg.ReplyTo) + len(msg.To) + len(msg.Cc) + len(msg.Bcc)
	d.Participants = make([]Participant, 0, n)
	allOwn := true
	msg.participants(func(r Role, a Address) {
		p := Participant{Role: r, Name: a.Name, Email: a.Email, Key: m.key(a.Email)}
		dom := DomainOf(p.Key)
		p.Own = st.pol.aliases[p.Key] || m.ownDomain(dom, st.pol)
		p.Freemail = !p.Own && m.free.has(dom)
		allOwn = allOwn && p.Own
		d.Participants = append(d.Participants, p)
		if p.Own || r == RoleSender {
			return // Sender is a list or delegate, not a party
		}
		for _, i := range st.ext {
			if d.Participants[i].Key == p.Key {
				return
			}
		}
		st.ext = append(st.ext, len(d.Participants)-1)
	})
	var sender *Participant
	for i := range d.Participants {
		if r := d.Participants[i].Role; r == RoleFrom || (r == RoleSender && sender == nil) {
			sender = &d.Participants[i]
			if r == RoleFrom {
				break
			}
		}
	}
	switch {
	case sender == nil && strings.EqualFold(st.in.FolderRole, "sent"):
		d.Direction = Outbound
	case sender == nil:
		d.Direction = Inbound
	case sender.Own && allOwn:
		d.Direction = Internal
	case sender.Own:
		d.Direction = Outbound
	default:
		d.Direction = Inbound
	}
}

func (m *Matcher) ownDomain(dom string, pol *policy) bool {
	for _, o := range m.own {
		if domainMatches(dom, o) {
			return true
		}
	}
	for _, o := range pol.aliasDomains {
		if domainMatches(dom, o) {
			return true
		}
	}
	return false
}

// hasKeyword compares case-insensitively: some servers lower-case keywords.
func hasKeyword(kws []string, lower string) bool {
	for _, k := range kws {
		if strings.EqualFold(k, lower) {
			return true
		}
	}
	return false
}

// folderMatch reports the pattern matching folder: equal (INBOX in any
// case, RFC 3501 section 5.1), a path.Match glob, or a parent of it.
func folderMatch(patterns []string, folder string) (string, bool) {
	if folder == "" {
		return "", false
	}
	for _, p := range patterns {
		if p == folder || (strings.EqualFold(p, "INBOX") && strings.EqualFold(folder, "INBOX")) {
			return p, true
		}
		if ok, _ := path.Match(p, folder); ok {
			return p, true
		}
		if len(folder) > len(p) && strings.HasPrefix(folder, p) && (folder[len(p)] == '/' || folder[len(p)] == '.') {
			return p, true
		}
	}
	return "", false
}

func (m *Matcher) selected(st *state) bool {
	if hasKeyword(st.in.Keywords, m.logKW) {
		return true
	}
	_, ok := folderMatch(st.pol.log, st.in.Folder)
	return ok
}

// lookupEmails asks the directory once for every external address of the
// batch that still needs rules.
func (m *Matcher) lookupEmails(ctx context.Context, states []state) (map[string][]sink.Record, error) {
	var keys []string
	seen := map[string]bool{}
	for i := range states {
		st := &states[i]
		if st.done {
			continue
		}
		for _, j := range st.ext {
			k := st.d.Participants[j].Key
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	res, err := m.dir.LookupEmails(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("lookup %d emails: %w", len(keys), err)
	}
	return res, nil
}

func (m *Matcher) attachEmails(st *state, emails map[string][]sink.Record) {
	for _, j := range st.ext {
		p := &st.d.Participants[j]
		p.Looked = true
		p.Records = emails[p.Key]
	}
}

// lookupDomains asks once for the domains (and parent domains) of the
// external, non-freemail participants of the waiting messages.
func (m *Matcher) lookupDomains(ctx context.Context, states []*state) (map[string][]sink.Record, error) {
	var keys []string
	seen := map[string]bool{}
	for _, st := range states {
		for _, j := range st.ext {
			p := &st.d.Participants[j]
			if p.Freemail {
				continue
			}
			for _, d := range parentDomains(DomainOf(p.Key)) {
				if !seen[d] {
					seen[d] = true
					keys = append(keys, d)
				}
			}
		}
	}
	if len(keys) == 0 {
		return map[string][]sink.Record{}, nil
	}
	res, err := m.dir.LookupDomains(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("lookup %d domains: %w", len(keys), err)
	}
	if res == nil {
		res = map[string][]sink.Record{}
	}
	return res, nil
}
