package matcher

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText writes a readable, aligned explanation of the decision, as
// `mailsync match --explain` shows it.
func (d *Decision) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }

	line("message\t%s", orNone(d.MessageID))
	if d.Account != "" || d.Folder != "" {
		line("account\t%s\tfolder %s", orNone(d.Account), orNone(d.Folder))
	}
	line("decision\t%s (%s)\t%s", strings.ToUpper(string(d.Action)), d.Reason.Code, d.Reason.Text)
	line("direction\t%s", d.Direction)
	sel := ""
	if d.Selected {
		sel = ", marked for logging"
	}
	line("capture\t%s%s", d.Capture, sel)
	line("privacy\t%s\t%s", d.Privacy, includeText(d.Include))
	if err := tw.Flush(); err != nil {
		return err
	}

	section(tw, "participants")
	for _, p := range d.Participants {
		addr := p.Email
		if p.Name != "" {
			addr = fmt.Sprintf("%q <%s>", p.Name, p.Email)
		}
		if p.Key != p.Email {
			addr += " as " + p.Key
		}
		var class, found string
		switch {
		case p.Own:
			class, found = "own", "-"
		case p.Freemail:
			class = "freemail"
		default:
			class = "external"
		}
		if !p.Own {
			switch {
			case !p.Looked:
				found = "not looked up"
			case len(p.Records) == 0:
				found = "not in directory"
			default:
				found = recordList(p.Records)
			}
			if len(p.DomainRecords) > 0 {
				found += "; domain: " + recordList(p.DomainRecords)
			}
		}
		line("  %s\t%s\t%s\t%s", p.Role, addr, class, found)
	}
	if len(d.Participants) == 0 {
		line("  (none)")
	}

	section(tw, "exclusions")
	for _, c := range d.Exclusions {
		state := "no"
		switch {
		case c.Fired && c.Off:
			state = "fired, kept by config"
		case c.Fired:
			state = "FIRED"
		}
		if c.Detail == "" {
			line("  %s\t%s", c.Name, state)
		} else {
			line("  %s\t%s\t%s", c.Name, state, c.Detail)
		}
	}

	section(tw, "rules")
	for _, r := range d.Rules {
		out := r.Outcome
		if out == OutcomeFired {
			out = "FIRED"
		}
		if r.Detail == "" {
			line("  %s\t%s", r.Rule, out)
		} else {
			line("  %s\t%s\t%s", r.Rule, out, r.Detail)
		}
	}

	section(tw, "records")
	for _, r := range d.Records {
		// Via names the look-up that found the record (which CRM query,
		// or the directory file), so an admin can tell why it matched.
		switch {
		case r.Via != "":
			line("  %s\t%s\t%s\tfound by %s", r.Kind, r.ID, r.Name, r.Via)
		case r.Name == "":
			line("  %s\t%s", r.Kind, r.ID)
		default:
			line("  %s\t%s\t%s", r.Kind, r.ID, r.Name)
		}
	}
	if len(d.Records) == 0 {
		line("  (none)")
	}
	if len(d.Intents) > 0 {
		section(tw, "intents")
		for _, in := range d.Intents {
			line("  %s %s\t%s\t%s", in.Action, in.Kind, in.Reason, fields(in.Fields))
		}
	}
	if len(d.ParseErrors) > 0 {
		section(tw, "parse errors")
		for _, e := range d.ParseErrors {
			line("  %s", e)
		}
	}
	return tw.Flush()
}

// section starts a new block: flushing realigns columns per block.
func section(tw *tabwriter.Writer, title string) {
	tw.Flush()
	fmt.Fprintf(tw, "\n%s\n", title)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func includeText(in Include) string {
	var yes, no []string
	for _, f := range []struct {
		n  string
		ok bool
	}{{"subject", in.Subject}, {"headers", in.Headers}, {"body", in.Body}, {"attachments", in.Attachments}} {
		if f.ok {
			yes = append(yes, f.n)
		} else {
			no = append(no, f.n)
		}
	}
	s := "sends participants, date"
	if len(yes) > 0 {
		s += ", " + strings.Join(yes, ", ")
	}
	if len(no) > 0 {
		s += "; withholds " + strings.Join(no, ", ")
	}
	return s
}

func fields(f map[string]string) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, f[k])
	}
	return strings.Join(parts, " ")
}
