package odoo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mailsync/mailsync/sync/sink"
)

// createIntents carries out the matcher's auto-create intents. Each one
// searches before it creates, so a retry or a lost state file finds the
// record the first attempt made instead of making a second.
func (s *Sink) createIntents(ctx context.Context, m *Message) ([]sink.Record, error) {
	if m.Match == nil || len(m.Match.Intents) == 0 {
		return nil, nil
	}
	var out []sink.Record
	for _, in := range m.Match.Intents {
		if in.Action != "create" {
			continue
		}
		var (
			r   sink.Record
			err error
		)
		switch in.Kind {
		case sink.KindContact:
			r, err = s.ensurePartner(ctx, in.Fields)
		case sink.KindLead:
			r, err = s.ensureLead(ctx, in.Fields, "lead")
		case sink.KindDeal:
			// A deal for a contact, or for the contact created just now.
			f := in.Fields
			if f["contact"] == "" {
				for _, c := range out {
					if c.Kind == sink.KindContact {
						f = clone(f)
						f["contact"] = c.ID
					}
				}
			}
			r, err = s.ensureLead(ctx, f, "opportunity")
		default:
			continue
		}
		if err != nil {
			return out, fmt.Errorf("%s %q: %w", in.Kind, in.Fields["email"], err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Sink) ensurePartner(ctx context.Context, f map[string]string) (sink.Record, error) {
	email := strings.ToLower(strings.TrimSpace(f["email"]))
	if email == "" {
		return sink.Record{}, sink.Permanent(fmt.Errorf("no e-mail address to create a contact with"))
	}
	var ids []int
	if err := s.rpc.execute(ctx, modelPartner, "search", []any{[]any{[]any{"email_normalized", "=", email}}},
		map[string]any{"limit": 1}, &ids); err != nil {
		return sink.Record{}, err
	}
	r := sink.Record{Kind: sink.KindContact, Email: email, Name: nameOr(f["name"], email)}
	if len(ids) > 0 {
		r.ID = id(ids[0])
		return r, nil
	}
	vals := map[string]any{"name": r.Name, "email": email}
	if c, err := strconv.Atoi(f["company"]); err == nil && c > 0 {
		vals["parent_id"] = c
		r.Company = f["company"]
	}
	var n int
	if err := s.rpc.execute(ctx, modelPartner, "create", []any{vals}, nil, &n); err != nil {
		return sink.Record{}, err
	}
	r.ID = id(n)
	s.log.Info("created Odoo contact", "partner", n, "email", email)
	return r, nil
}

// ensureLead finds or creates a crm.lead of type typ: a lead by address,
// or an open opportunity of the contact with the same name.
func (s *Sink) ensureLead(ctx context.Context, f map[string]string, typ string) (sink.Record, error) {
	email := strings.ToLower(strings.TrimSpace(f["email"]))
	name := nameOr(f["name"], email)
	kind := sink.KindLead
	domain := []any{[]any{"type", "=", typ}}
	vals := map[string]any{"name": name, "type": typ}
	if typ == "opportunity" {
		kind = sink.KindDeal
		c, err := strconv.Atoi(f["contact"])
		if err != nil || c <= 0 {
			return sink.Record{}, sink.Permanent(fmt.Errorf("no Odoo contact to open a deal for"))
		}
		domain = append(domain, []any{"partner_id", "=", c}, []any{"name", "=", name})
		vals["partner_id"] = c
	} else {
		if email == "" {
			return sink.Record{}, sink.Permanent(fmt.Errorf("no e-mail address to create a lead with"))
		}
		domain = append(domain, []any{"email_normalized", "=", email})
		vals["email_from"] = email
		vals["contact_name"] = nameOr(f["name"], "")
	}
	if src := f["source"]; src != "" {
		vals["description"] = "Created by mailsync (" + src + ")"
	}
	var ids []int
	if err := s.rpc.execute(ctx, modelLead, "search", []any{domain}, map[string]any{"limit": 1}, &ids); err != nil {
		return sink.Record{}, err
	}
	r := sink.Record{Kind: kind, Name: name, Email: email}
	if len(ids) > 0 {
		r.ID = id(ids[0])
		return r, nil
	}
	var n int
	if err := s.rpc.execute(ctx, modelLead, "create", []any{vals}, map[string]any{"context": map[string]any{"mail_create_nosubscribe": true}}, &n); err != nil {
		return sink.Record{}, err
	}
	r.ID = id(n)
	s.log.Info("created Odoo "+typ, "lead", n, "name", name)
	return r, nil
}

func nameOr(name, fallback string) string {
	if strings.TrimSpace(name) != "" {
		return strings.TrimSpace(name)
	}
	return fallback
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
