package mailgen

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// thread is a conversation the generator can continue.
type thread struct {
	owner    mail.Address
	internal bool
	company  *Company // nil for strangers and internal threads
	contact  Contact
	lang     string
	tz       *time.Location
	deal     *Deal
	topic    *topic
	subject  string         // without reply prefix
	cc       []mail.Address // further participants, e.g. a second owner
	vars     map[string]string
	ids      []string
	lastText string
	lastFrom mail.Address
	lastTo   mail.Address
	lastDate time.Time
	lastOut  bool // last message was sent by the owner
}

// draft is a message before rendering.
type draft struct {
	kind        Kind
	dir         Direction
	owner       mail.Address
	from        mail.Address
	tz          *time.Location
	to, cc      []mail.Address
	subject     string
	date        time.Time
	id          string
	inReplyTo   string
	refs        []string
	text        string // plain body, "\n" line breaks
	html        string // "" for plain-only mail
	attach      []attachment
	attachBytes int // encoded attachment bytes, set by render
	extra       [][2]string
	client      client
	latin1      bool
	external    bool // sent from outside the owners' domain
	companyID   string
	contactID   string
	dealID      string
}

func (d *draft) message(raw []byte) Message {
	m := Message{
		Raw: raw, ID: d.id, InReplyTo: d.inReplyTo, References: d.refs, Date: d.date,
		Subject: d.subject, From: strings.ToLower(d.from.Address), Kind: d.kind, Direction: d.dir,
		Owner: d.owner.Address, CompanyID: d.companyID, ContactID: d.contactID, DealID: d.dealID,
	}
	for _, a := range d.to {
		m.To = append(m.To, strings.ToLower(a.Address))
	}
	for _, a := range d.cc {
		m.Cc = append(m.Cc, strings.ToLower(a.Address))
	}
	return m
}

func (g *Generator) compose(owner mail.Address, dir Direction, date time.Time) *draft {
	if dir == Outbound {
		if g.chance(0.15) {
			return g.internal(owner, dir, date)
		}
		return g.conversation(owner, dir, date)
	}
	r := g.rng.Float64()
	switch {
	case r < 0.11 && len(g.opts.Newsletters) > 0:
		return g.newsletter(owner, date)
	case r < 0.16:
		if t := g.lastOutboundThread(owner); t != nil {
			return g.autoReply(t, date)
		}
	case r < 0.28:
		return g.internal(owner, dir, date)
	}
	return g.conversation(owner, dir, date)
}

// ownerThreads returns the owner's threads of the given sort, newest last.
func (g *Generator) ownerThreads(owner mail.Address, internal bool) []*thread {
	var ts []*thread
	for _, t := range g.threads {
		if t.owner == owner && t.internal == internal {
			ts = append(ts, t)
		}
	}
	return ts
}

// pickRecent prefers recent threads, as real conversations do.
func (g *Generator) pickRecent(ts []*thread) *thread {
	n := min(len(ts), 12)
	i := len(ts) - 1 - min(g.rng.IntN(n), g.rng.IntN(n))
	return ts[i]
}

func (g *Generator) lastOutboundThread(owner mail.Address) *thread {
	ts := g.ownerThreads(owner, false)
	for i := len(ts) - 1; i >= 0 && i >= len(ts)-6; i-- {
		if ts[i].lastOut {
			return ts[i]
		}
	}
	return nil
}

func (g *Generator) conversation(owner mail.Address, dir Direction, date time.Time) *draft {
	// Answer threads whose last message came from the other side, so
	// conversations alternate as real ones do.
	var ts []*thread
	for _, t := range g.ownerThreads(owner, false) {
		if t.lastOut == (dir == Inbound) {
			ts = append(ts, t)
		}
	}
	if len(ts) > 0 && g.chance(0.6) {
		return g.reply(g.pickRecent(ts), dir, date)
	}
	t := g.newThread(owner, dir)
	return g.first(t, dir, date)
}

func (g *Generator) newThread(owner mail.Address, dir Direction) *thread {
	t := &thread{owner: owner, lang: "en", tz: time.UTC}
	if len(g.opts.Strangers) > 0 && (dir == Inbound && g.chance(0.1) || len(g.opts.Companies) == 0) {
		t.contact = g.opts.Strangers[g.rng.IntN(len(g.opts.Strangers))]
	} else {
		c := &g.opts.Companies[g.rng.IntN(len(g.opts.Companies))]
		t.company, t.contact = c, c.Contacts[g.rng.IntN(len(c.Contacts))]
		t.tz = time.FixedZone("", c.UTCOffset*60)
		if c.Lang != "" {
			t.lang = c.Lang
		}
		if len(c.Deals) > 0 && g.chance(0.6) {
			t.deal = &c.Deals[g.rng.IntN(len(c.Deals))]
		}
		if len(c.Contacts) > 1 && g.chance(0.2) {
			if p := c.Contacts[g.rng.IntN(len(c.Contacts))]; p != t.contact {
				t.cc = append(t.cc, mail.Address{Name: p.Name, Address: p.Email})
			}
		}
	}
	// A second owner on copy makes the same message land in two
	// mailboxes, which cross-mailbox de-duplication must notice.
	if len(g.opts.Owners) > 1 && g.chance(0.1) {
		if o := g.opts.Owners[g.rng.IntN(len(g.opts.Owners))]; o != owner {
			t.cc = append(t.cc, o)
		}
	}
	support := strings.Contains(strings.ToLower(owner.Address), "support")
	for range 8 {
		t.topic = &topics[g.rng.IntN(len(topics))]
		if t.topic.support == support || g.chance(0.2) {
			break
		}
	}
	t.vars = g.vars(t)
	t.subject = g.fill(g.pick(t.topic.subjects), t.vars)
	if ls := localSubjects[t.lang]; ls != nil && g.chance(0.5) {
		t.subject = g.fill(g.pick(ls), t.vars)
	}
	if t.deal != nil && g.chance(0.5) {
		if g.chance(0.5) {
			t.subject = "[#" + t.deal.ID + "] " + t.subject
		} else {
			t.subject += " [#" + t.deal.ID + "]"
		}
	}
	g.remember(t)
	return t
}

// remember adds a thread, forgetting old ones: only recent threads are
// continued, and a bounded list keeps Generate O(1) over long runs.
func (g *Generator) remember(t *thread) {
	const keep = 200
	if len(g.threads) >= 2*keep {
		g.threads = append(g.threads[:0], g.threads[len(g.threads)-keep:]...)
	}
	g.threads = append(g.threads, t)
}

func (g *Generator) vars(t *thread) map[string]string {
	v := map[string]string{
		"product": g.pick(products), "qty": fmt.Sprint(5 + g.rng.IntN(495)), "day": g.pick(days),
		"invoice": fmt.Sprintf("INV-2026-%04d", g.rng.IntN(10000)), "ticket": fmt.Sprint(40000 + g.rng.IntN(9999)),
		"issue": g.pick(issues), "myco": "Acme", "first": firstName(t.contact.Name),
	}
	amount := 2000 + g.rng.IntN(180000)
	switch t.lang {
	case "de":
		v["amount"] = fmt.Sprintf("%d.%03d,00 €", amount/1000, amount%1000)
	case "fr":
		v["amount"] = fmt.Sprintf("%d %03d,00 €", amount/1000, amount%1000)
	default:
		v["amount"] = fmt.Sprintf("$%d,%03d.00", amount/1000, amount%1000)
	}
	if t.company != nil {
		v["company"] = t.company.Name
		v["companyfile"] = strings.NewReplacer(" ", "_", "&", "und").Replace(t.company.Name)
	} else {
		v["company"], v["companyfile"] = "your team", "Acme"
	}
	if t.deal != nil {
		v["deal"] = t.deal.Name
	}
	return v
}

func (g *Generator) fill(s string, v map[string]string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		j := strings.IndexByte(s, '}')
		if i < 0 || j < i {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(v[s[i+1:j]])
		s = s[j+1:]
	}
}

// base fills the routing fields shared by every message of a thread.
func (g *Generator) base(t *thread, dir Direction, date time.Time) *draft {
	d := &draft{kind: KindConversation, dir: dir, owner: t.owner, date: date}
	contact := mail.Address{Name: t.contact.Name, Address: t.contact.Email}
	if dir == Outbound {
		d.from, d.tz, d.to = t.owner, g.ownTZ, []mail.Address{contact}
	} else {
		d.from, d.tz, d.to, d.external = contact, t.tz, []mail.Address{t.owner}, true
	}
	d.cc = append(d.cc, t.cc...)
	if t.company != nil {
		d.companyID = t.company.ID
	}
	d.contactID = t.contact.ID
	if t.deal != nil {
		d.dealID = t.deal.ID
	}
	if t.internal {
		d.kind, d.companyID, d.contactID, d.dealID, d.external = KindInternal, "", "", "", false
	}
	d.client = g.clientFor(d.from.Address)
	d.id = g.messageID(d.client, d.from.Address)
	return d
}

func (g *Generator) first(t *thread, dir Direction, date time.Time) *draft {
	d := g.base(t, dir, date)
	d.subject = t.subject
	v := g.varsFor(t, d)
	var paras []string
	if !t.internal {
		opening := t.topic.custOpen
		if dir == Outbound {
			opening = t.topic.ourOpen
		}
		paras = append(paras, g.fill(g.pick(opening), v))
	} else {
		paras = append(paras, g.fill(g.pick(internalLines), v))
	}
	if lines := localized[t.lang]; lines != nil && dir == Inbound && g.chance(0.6) {
		paras = append([]string{g.fill(g.pick(lines), v)}, paras...)
	}
	for range g.rng.IntN(4) {
		paras = append(paras, g.fill(g.pick(fillers), v))
	}
	d.text = g.letter(t, d, v, paras, !t.internal && g.chance(0.3))
	g.finish(t, d, 0.45)
	return d
}

func (g *Generator) reply(t *thread, dir Direction, date time.Time) *draft {
	d := g.base(t, dir, date)
	if dir == Inbound && t.company != nil && g.chance(0.15) {
		// Someone else at the company answers, keeping the contact on copy.
		p := t.company.Contacts[g.rng.IntN(len(t.company.Contacts))]
		if p != t.contact {
			d.cc = append(d.cc, d.from)
			d.from = mail.Address{Name: p.Name, Address: p.Email}
			d.contactID = p.ID
			d.client = g.clientFor(p.Email)
			d.id = g.messageID(d.client, p.Email)
		}
	}
	prefix := "Re: "
	switch {
	case d.client == outlook:
		prefix = "RE: "
	case t.lang == "de" && dir == Inbound:
		prefix = "AW: "
	}
	d.subject = prefix + t.subject
	d.inReplyTo = t.ids[len(t.ids)-1]
	d.refs = append([]string(nil), t.ids...)
	if len(d.refs) > 12 {
		// Keep the first id and the newest ones, as RFC 5322 3.6.4 allows
		// trimming and clients commonly do.
		d.refs = append(d.refs[:1:1], d.refs[len(d.refs)-11:]...)
	}
	v := g.varsFor(t, d)
	lines := internalLines
	switch {
	case t.internal:
	case dir == Outbound:
		lines = t.topic.ourReply
	default:
		lines = t.topic.custReply
	}
	paras := []string{g.fill(g.pick(lines), v)}
	if g.chance(0.35) {
		paras = append(paras, g.fill(g.pick(fillers), v))
	}
	own := g.letter(t, d, v, paras, false)
	d.text = own + "\n\n" + g.quote(d.client, t)
	g.finish(t, d, 0.12)
	return d
}

// varsFor adjusts thread variables to the message's recipient and sender.
func (g *Generator) varsFor(t *thread, d *draft) map[string]string {
	v := make(map[string]string, len(t.vars)+2)
	for k, x := range t.vars {
		v[k] = x
	}
	v["first"] = firstName(d.to[0].Name)
	for _, o := range g.opts.Owners {
		if d.to[0] == o {
			// Role mailboxes are greeted as a team, not by first name.
			v["first"] = "team"
		}
	}
	v["me"] = firstName(d.from.Name)
	return v
}

// letter assembles greeting, paragraphs, closing and signature.
func (g *Generator) letter(t *thread, d *draft, v map[string]string, paras []string, disclaimer bool) string {
	lang := t.lang
	if d.dir == Outbound || t.internal {
		lang = "en"
	}
	var b strings.Builder
	b.WriteString(g.fill(g.pick(greetings[lang]), v))
	for _, p := range paras {
		b.WriteString("\n\n")
		b.WriteString(p)
	}
	b.WriteString("\n\n")
	b.WriteString(g.pick(closings[lang]))
	b.WriteString("\n")
	b.WriteString(d.from.Name)
	switch {
	case d.from == d.owner || t.internal:
		b.WriteString("\nAcme Corp | +1 555 0100\nhttps://www.acme.example")
	case t.company != nil:
		title := ""
		for _, p := range t.company.Contacts {
			if p.Email == d.from.Address {
				title = p.Title
			}
		}
		fmt.Fprintf(&b, "\n%s\n%s\nPhone: +1 555 01%02d", title, t.company.Name, len(d.from.Address)*7%100)
	}
	if d.client == apple && g.chance(0.4) {
		b.WriteString("\n\nSent from my iPhone")
	}
	if disclaimer {
		b.WriteString("\n\n")
		b.WriteString(g.pick(disclaimers))
	}
	return b.String()
}

// quote renders the thread's last message as quoted history.
func (g *Generator) quote(c client, t *thread) string {
	prev := t.lastText
	const maxQuote = 24 << 10
	if len(prev) > maxQuote {
		prev = prev[:strings.LastIndexByte(prev[:maxQuote], '\n')+1] + "[...]"
	}
	when := t.lastDate.Format("Mon, Jan 2, 2006 at 3:04 PM")
	if c == outlook {
		return fmt.Sprintf("-----Original Message-----\nFrom: %s\nSent: %s\nTo: %s\nSubject: %s\n\n%s",
			t.lastFrom.String(), when, t.lastTo.String(), t.subject, prev)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "On %s, %s <%s> wrote:\n", when, t.lastFrom.Name, t.lastFrom.Address)
	for _, line := range strings.Split(prev, "\n") {
		switch {
		case strings.HasPrefix(line, ">"):
			b.WriteString(">" + line + "\n")
		case line == "":
			b.WriteString(">\n")
		default:
			b.WriteString("> " + line + "\n")
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// finish records the message in its thread and adds HTML and attachments.
func (g *Generator) finish(t *thread, d *draft, pAttach float64) {
	t.ids = append(t.ids, d.id)
	t.lastText, t.lastFrom, t.lastTo, t.lastOut = d.text, d.from, d.to[0], d.dir == Outbound
	t.lastDate = d.date.In(d.tz)
	g.dress(d)
	if budget := g.size.attachBudget(); budget > 0 && t.topic != nil && g.chance(pAttach) {
		g.attachFiles(d, t, budget)
	}
}

func (g *Generator) internal(owner mail.Address, dir Direction, date time.Time) *draft {
	ts := g.ownerThreads(owner, true)
	if len(ts) > 0 && g.chance(0.4) {
		return g.reply(ts[len(ts)-1-g.rng.IntN(min(len(ts), 4))], dir, date)
	}
	people := append([]Contact(nil), g.opts.Colleagues...)
	for _, o := range g.opts.Owners {
		if o != owner {
			people = append(people, Contact{Name: o.Name, Email: o.Address})
		}
	}
	if len(people) == 0 {
		return g.conversation(owner, dir, date)
	}
	t := &thread{owner: owner, internal: true, lang: "en", tz: g.ownTZ, contact: people[g.rng.IntN(len(people))]}
	t.topic = &topics[g.rng.IntN(len(topics))]
	if len(g.opts.Companies) > 0 {
		t.company = &g.opts.Companies[g.rng.IntN(len(g.opts.Companies))]
	}
	t.vars = g.vars(t)
	t.company = nil // the company is only talked about; internal mail is never logged against it
	t.subject = g.fill(g.pick(internalSubjects), t.vars)
	g.remember(t)
	return g.first(t, dir, date)
}

func (g *Generator) autoReply(t *thread, date time.Time) *draft {
	d := g.base(t, Inbound, date)
	d.kind, d.cc = KindAutoReply, nil
	d.subject = "Automatic reply: " + t.subject
	if t.lang == "de" {
		d.subject = "Abwesenheitsnotiz: " + t.subject
	}
	d.inReplyTo = t.ids[len(t.ids)-1]
	d.refs = []string{d.inReplyTo}
	d.text = g.fill(g.pick(autoReplies), t.vars) + "\n\n" + d.from.Name
	// RFC 3834 section 5: auto-replies say so and must not be replied to.
	d.extra = append(d.extra, [2]string{"Auto-Submitted", "auto-replied"},
		[2]string{"X-Auto-Response-Suppress", "All"}, [2]string{"Precedence", "auto_reply"})
	g.dress(d)
	return d
}

func (g *Generator) newsletter(owner mail.Address, date time.Time) *draft {
	n := g.opts.Newsletters[g.rng.IntN(len(g.opts.Newsletters))]
	d := &draft{kind: KindNewsletter, dir: Inbound, owner: owner, date: date, external: true,
		from: mail.Address{Name: n.Name, Address: n.From}, to: []mail.Address{owner}, tz: time.UTC, client: bulk}
	d.id = g.messageID(bulk, n.From)
	d.subject = g.pick(newsHeadlines)
	if g.chance(0.4) {
		d.subject = n.Name + ": " + d.subject
	}
	token := hex(g.rng.Uint64()) + hex(g.rng.Uint64())
	dom := domainOf(n.From)
	// RFC 2919 (List-Id), RFC 2369 and RFC 8058 (one-click unsubscribe).
	d.extra = append(d.extra,
		[2]string{"List-Id", n.Name + " <" + n.ListID + ">"},
		[2]string{"List-Unsubscribe", "<https://" + dom + "/unsubscribe?u=" + token + ">, <mailto:unsubscribe+" + token[:12] + "@" + dom + ">"},
		[2]string{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"},
		[2]string{"Precedence", "bulk"},
		[2]string{"Feedback-ID", "campaign-" + token[:6] + ":" + dom + ":esp"})
	g.newsBody(d, n, token)
	return d
}
