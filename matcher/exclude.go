package matcher

import (
	"fmt"
	"strings"
)

// mailSystemLocals are sender local parts of mail systems, whose messages
// are bounces and notifications (RFC 5321 section 4.5.1 postmaster; the
// MAILER-DAEMON convention of sendmail and most MTAs).
var mailSystemLocals = map[string]bool{"mailer-daemon": true, "postmaster": true, "mail-daemon": true, "mailerdaemon": true}

// exclusions evaluates every exclusion, records each in d.Exclusions and
// excludes the message on the first one that fired and is not kept. It
// reports whether the message was excluded.
func (m *Matcher) exclusions(st *state) bool {
	d, msg, in, pol := st.d, st.msg, st.in, st.pol
	d.Exclusions = make([]Check, 0, 12)
	add := func(name string, off, fired bool, detail string) {
		if !fired {
			detail = ""
		}
		d.Exclusions = append(d.Exclusions, Check{Name: name, Fired: fired, Off: off, Detail: detail})
	}

	// Details are built only for checks that fired: this runs per message.
	ok := hasKeyword(in.Keywords, m.privateKW)
	add(ReasonPrivateKeyword, false, ok, lazy(ok, func() string { return "flagged " + m.privateKW }))

	p, ok := folderMatch(pol.private, in.Folder)
	add(ReasonPrivateFolder, false, ok, lazy(ok, func() string { return fmt.Sprintf("folder %q is private (%q)", in.Folder, p) }))

	if p, ok = folderMatch(pol.excluded, in.Folder); ok {
		add(ReasonExcludedFolder, false, true, fmt.Sprintf("folder %q is excluded (%q)", in.Folder, p))
	} else {
		for _, r := range pol.excludedRoles {
			ok = ok || (in.FolderRole != "" && strings.EqualFold(r, in.FolderRole))
		}
		add(ReasonExcludedFolder, false, ok, lazy(ok, func() string {
			return fmt.Sprintf("folder %q has excluded role %s", in.Folder, strings.ToLower(in.FolderRole))
		}))
	}

	detail, ok := m.blocked(d.Participants)
	add(ReasonBlocklist, false, ok, detail)

	add(ReasonInternal, m.keep.Internal, d.Direction == Internal, "every participant is an own address")

	detail, ok = bounce(msg)
	add(ReasonBounce, m.keep.Bounces, ok, detail)

	ok = msg.AutoSubmitted != "" && msg.AutoSubmitted != "no"
	add(ReasonAutoSubmitted, m.keep.AutoReplies, ok, lazy(ok, func() string { return "Auto-Submitted: " + msg.AutoSubmitted }))
	add(ReasonAutoReply, m.keep.AutoReplies, msg.AutoReply != "", msg.AutoReply)
	ok = msg.ContentType == "multipart/report" && msg.ReportType != "delivery-status"
	add(ReasonReport, m.keep.AutoReplies, ok, lazy(ok, func() string { return "multipart/report; report-type=" + msg.ReportType }))

	switch msg.Precedence {
	case "bulk", "list", "junk":
		add(ReasonPrecedence, m.keep.Bulk, true, "Precedence: "+msg.Precedence)
	default:
		add(ReasonPrecedence, m.keep.Bulk, false, "")
	}
	ok = msg.ListID != ""
	add(ReasonListID, m.keep.Bulk, ok, lazy(ok, func() string { return "List-Id: " + clip(msg.ListID) }))
	ok = msg.ListUnsubscribe != ""
	add(ReasonListUnsubscribe, m.keep.Bulk, ok, lazy(ok, func() string { return "List-Unsubscribe: " + clip(msg.ListUnsubscribe) }))

	for _, c := range d.Exclusions {
		if c.Fired && !c.Off {
			d.Action = Exclude
			d.Reason = Reason{Code: c.Name, Text: c.Detail}
			return true
		}
	}
	return false
}

// lazy returns fn() when ok, "" otherwise.
func lazy(ok bool, fn func() string) string {
	if !ok {
		return ""
	}
	return fn()
}

// bounce recognises delivery-status notifications (RFC 3464, RFC 6522) and
// the null reverse-path that bounces and RFC 3834 auto-responses carry.
func bounce(msg *Message) (string, bool) {
	if msg.HasReturnPath && strings.ReplaceAll(msg.ReturnPath, " ", "") == "<>" {
		return "Return-Path is <> (null sender)", true
	}
	if msg.ContentType == "multipart/report" && msg.ReportType == "delivery-status" {
		return "multipart/report; report-type=delivery-status", true
	}
	for _, a := range msg.From {
		local, _, _ := strings.Cut(a.Email, "@")
		if mailSystemLocals[local] {
			return "sender " + a.Email + " is a mail system", true
		}
	}
	return "", false
}

// blocked reports the first participant on the blocklist, with why.
func (m *Matcher) blocked(ps []Participant) (string, bool) {
	if len(m.blockAddr) == 0 && len(m.blockDom) == 0 && len(m.blockPat) == 0 {
		return "", false
	}
	for _, p := range ps {
		if m.blockAddr[p.Key] || m.blockAddr[p.Email] {
			return fmt.Sprintf("%s %s is blocklisted", p.Role, p.Email), true
		}
		dom := DomainOf(p.Key)
		for _, b := range m.blockDom {
			if domainMatches(dom, b) {
				return fmt.Sprintf("%s %s: domain %s is blocklisted", p.Role, p.Email, b), true
			}
		}
		for _, b := range m.blockPat {
			if b.match(p.Key) || (p.Key != p.Email && b.match(p.Email)) {
				return fmt.Sprintf("%s %s matches blocklist pattern %q", p.Role, p.Email, b), true
			}
		}
	}
	return "", false
}
