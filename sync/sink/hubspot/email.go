package hubspot

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	_ "github.com/emersion/go-message/charset" // decode non-UTF-8 parts
	"github.com/emersion/go-message/mail"

	"github.com/mailsync/mailsync/sync/sink"
)

// maxBodyChars keeps hs_email_text and hs_email_html below HubSpot's
// 65,536-character limit for a property value.
const maxBodyChars = 60_000

// HubSpot-defined association type ids from an email (v4 associations).
const (
	emailToContact = 198
	emailToCompany = 186
	emailToDeal    = 210
)

type assocType struct {
	Category string `json:"associationCategory"`
	TypeID   int    `json:"associationTypeId"`
}

type association struct {
	To    idInput     `json:"to"`
	Types []assocType `json:"types"`
}

type emailInput struct {
	Properties   map[string]string `json:"properties"`
	Associations []association     `json:"associations,omitempty"`
}

// emailFor builds the engagement of m and the records it is associated
// with. Records whose id is not a HubSpot id (they came from the directory
// file) are left out.
func (c *Client) emailFor(m *sink.Message) (emailInput, []sink.Record) {
	ts := m.Date
	if ts.IsZero() {
		ts = time.Now()
	}
	p := map[string]string{
		"hs_timestamp":       strconv.FormatInt(ts.UnixMilli(), 10),
		"hs_email_direction": direction(m.Direction),
		"hs_email_status":    "SENT",
		"hs_email_subject":   m.Subject,
		"hs_email_headers":   headersJSON(m),
		c.cfg.KeyProperty:    m.Key,
	}
	if len(m.Provenance) > 0 {
		if owner, ok := c.cfg.Owners[m.Provenance[0].Account]; ok {
			p["hubspot_owner_id"] = owner
		}
	}
	if !m.BodyOmitted && len(m.Body) > 0 {
		text, html := bodies(m.Body)
		if text != "" {
			p["hs_email_text"] = text
		}
		if html != "" {
			p["hs_email_html"] = html
		}
	}
	in := emailInput{Properties: p}
	var linked []sink.Record
	seen := map[string]bool{}
	if m.Match != nil {
		for _, r := range m.Match.Records {
			var typ int
			switch r.Kind {
			case sink.KindContact:
				typ = emailToContact
			case sink.KindCompany:
				typ = emailToCompany
			case sink.KindDeal:
				typ = emailToDeal
			default:
				continue
			}
			if !isHubSpotID(r.ID) || seen[r.Key()] {
				continue
			}
			seen[r.Key()] = true
			in.Associations = append(in.Associations, association{To: idInput{ID: r.ID}, Types: []assocType{{Category: "HUBSPOT_DEFINED", TypeID: typ}}})
			linked = append(linked, r.Ref())
		}
	}
	return in, linked
}

func isHubSpotID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// direction maps mailsync's direction to hs_email_direction: what the
// organisation sent is EMAIL, what it received INCOMING_EMAIL.
func direction(d sink.Direction) string {
	if d == sink.Inbound {
		return "INCOMING_EMAIL"
	}
	return "EMAIL"
}

type hsAddress struct {
	Email     string `json:"email"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
}

func hsAddr(a sink.Address) hsAddress {
	first, last := a.Name, ""
	if i := strings.LastIndexByte(a.Name, ' '); i > 0 {
		first, last = a.Name[:i], a.Name[i+1:]
	}
	return hsAddress{Email: a.Email, FirstName: first, LastName: last}
}

func hsAddrs(as []sink.Address) []hsAddress {
	out := make([]hsAddress, 0, len(as))
	for _, a := range as {
		out = append(out, hsAddr(a))
	}
	return out
}

// headersJSON is hs_email_headers in the form HubSpot documents: from, to,
// cc, bcc; HubSpot fills the read-only hs_email_from_* and hs_email_to_*
// properties from it.
func headersJSON(m *sink.Message) string {
	h := struct {
		From *hsAddress  `json:"from,omitempty"`
		To   []hsAddress `json:"to"`
		Cc   []hsAddress `json:"cc"`
		Bcc  []hsAddress `json:"bcc"`
	}{To: hsAddrs(m.To), Cc: hsAddrs(m.Cc), Bcc: hsAddrs(m.Bcc)}
	if len(m.From) > 0 {
		f := hsAddr(m.From[0])
		h.From = &f
	}
	b, _ := json.Marshal(h)
	return string(b)
}

// bodies returns the first text/plain and text/html parts of raw, each cut
// to maxBodyChars. A message cut at the size cap yields what was parsed.
func bodies(raw []byte) (text, html string) {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return "", ""
	}
	for range 100 { // bound the parts walked
		part, err := r.NextPart()
		if err != nil {
			break
		}
		h, ok := part.Header.(*mail.InlineHeader)
		if !ok {
			continue
		}
		ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
		if ct == "" {
			ct = "text/plain"
		}
		switch {
		case ct == "text/plain" && text == "":
			text = readCapped(part.Body)
		case ct == "text/html" && html == "":
			html = readCapped(part.Body)
		}
		if text != "" && html != "" {
			break
		}
	}
	return text, html
}

func readCapped(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4*maxBodyChars))
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if utf8.RuneCountInString(s) > maxBodyChars {
		s = string([]rune(s)[:maxBodyChars])
	}
	return s
}
