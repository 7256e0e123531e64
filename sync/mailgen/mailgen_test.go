package mailgen

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/emersion/go-message/charset" // ISO-8859-1 bodies
	gomail "github.com/emersion/go-message/mail"
)

// defaultCorpus is 2,000 messages with the default options for seed 1,
// shared by the tests that only read it (generation under -race is slow).
var defaultCorpus = sync.OnceValue(func() []Message { return generate(2000, Options{}) })

// corpus generates n messages with opts for seed 1.
func corpus(t testing.TB, n int, opts Options) []Message {
	t.Helper()
	if n == 2000 && reflect.DeepEqual(opts, Options{}) {
		return defaultCorpus()
	}
	return generate(n, opts)
}

func generate(n int, opts Options) []Message {
	g := New(1, opts)
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = g.Generate(Spec{})
	}
	return msgs
}

// parse reads the whole message with go-message, as mailsync does, and
// returns the decoded subject and the number of leaf parts.
func parse(raw []byte) (subject string, parts int, err error) {
	mr, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return "", 0, fmt.Errorf("create reader: %w", err)
	}
	if subject, err = mr.Header.Subject(); err != nil {
		return "", 0, fmt.Errorf("subject: %w", err)
	}
	if id, err := mr.Header.MessageID(); err != nil || id == "" {
		return "", 0, fmt.Errorf("message-id %q: %v", id, err)
	}
	if _, err := mr.Header.Date(); err != nil {
		return "", 0, fmt.Errorf("date: %w", err)
	}
	for _, f := range []string{"From", "To", "Cc"} {
		if _, err := mr.Header.AddressList(f); err != nil {
			return "", 0, fmt.Errorf("%s: %w", f, err)
		}
	}
	for range 100 {
		p, err := mr.NextPart()
		if err == io.EOF {
			return subject, parts, nil
		}
		if err != nil {
			return "", 0, fmt.Errorf("part %d: %w", parts, err)
		}
		if _, err := io.Copy(io.Discard, p.Body); err != nil {
			return "", 0, fmt.Errorf("part %d body: %w", parts, err)
		}
		parts++
	}
	return "", 0, fmt.Errorf("more than 100 parts")
}

func TestDeterministic(t *testing.T) {
	a, b, c := New(7, Options{}), New(7, Options{}), New(8, Options{})
	differ := false
	for i := range 300 {
		x, y, z := a.Next(), b.Next(), c.Next()
		if !bytes.Equal(x, y) {
			t.Fatalf("message %d differs between two generators with seed 7", i)
		}
		differ = differ || !bytes.Equal(x, z)
	}
	if !differ {
		t.Fatal("seeds 7 and 8 produced identical output")
	}
}

func TestAverageSize(t *testing.T) {
	for _, target := range []int{27_000, 12_000} {
		t.Run(fmt.Sprint(target), func(t *testing.T) {
			var total int
			opts := Options{AvgSize: target}
			if target == 27_000 {
				opts = Options{} // the default target; reuses the shared corpus
			}
			for _, m := range corpus(t, 2000, opts) {
				total += len(m.Raw)
			}
			avg := total / 2000
			t.Logf("average size %d bytes, target %d", avg, target)
			if d := float64(avg-target) / float64(target); d < -0.15 || d > 0.15 {
				t.Fatalf("average size = %d, want %d ±15%%", avg, target)
			}
		})
	}
}

func TestMessagesParse(t *testing.T) {
	for i, m := range corpus(t, 2000, Options{Owners: []mail.Address{
		{Name: "Acme Sales", Address: "sales@acme.example"}, {Name: "Acme Support", Address: "support@acme.example"},
	}}) {
		subject, parts, err := parse(m.Raw)
		if err != nil {
			t.Fatalf("message %d (%s): %v\n%.3000s", i, m.ID, err, m.Raw)
		}
		if got, want := subject, m.Subject; got != want {
			t.Fatalf("message %d: decoded subject = %q, want %q", i, got, want)
		}
		if parts == 0 {
			t.Fatalf("message %d has no parts", i)
		}
		lines := bytes.Split(m.Raw, []byte("\n"))
		for n, line := range lines {
			if n < len(lines)-1 && !bytes.HasSuffix(line, []byte("\r")) {
				t.Fatalf("message %d line %d lacks CRLF: %q", i, n, line)
			}
			if len(line) > 999 {
				t.Fatalf("message %d line %d is %d bytes, over RFC 5322's 998", i, n, len(line))
			}
		}
		if !bytes.HasSuffix(m.Raw, []byte("\r\n")) {
			t.Fatalf("message %d does not end in CRLF", i)
		}
	}
}

func TestIDsAndThreads(t *testing.T) {
	seen := map[string]bool{}
	replies, deep := 0, 0
	for i, m := range corpus(t, 2000, Options{}) {
		if seen[m.ID] {
			t.Fatalf("message %d repeats Message-ID %s", i, m.ID)
		}
		if m.InReplyTo != "" {
			replies++
			if !seen[m.InReplyTo] {
				t.Fatalf("message %d replies to %s, which was not generated before", i, m.InReplyTo)
			}
			if got := m.References[len(m.References)-1]; got != m.InReplyTo {
				t.Fatalf("message %d: last reference %s, want In-Reply-To %s", i, got, m.InReplyTo)
			}
			if !bytes.Contains(m.Raw, []byte("In-Reply-To: <"+m.InReplyTo+">")) {
				t.Fatalf("message %d: raw lacks its In-Reply-To header", i)
			}
		}
		for _, r := range m.References {
			if !seen[r] {
				t.Fatalf("message %d references %s, which was not generated before", i, r)
			}
		}
		if len(m.References) >= 4 {
			deep++
		}
		seen[m.ID] = true
	}
	if replies < 400 || deep < 20 {
		t.Fatalf("replies = %d, threads of 5+ = %d; want at least 400 and 20", replies, deep)
	}
}

func TestVariety(t *testing.T) {
	count := map[string]int{}
	tag := regexp.MustCompile(`\[#(DEAL-\d+)\]`)
	for i, m := range corpus(t, 2000, Options{}) {
		raw := string(m.Raw)
		has := func(name, s string) {
			if strings.Contains(raw, s) {
				count[name]++
			}
		}
		has("multipart/alternative", "multipart/alternative")
		has("multipart/mixed", "multipart/mixed")
		has("multipart/related", "multipart/related")
		has("quoted-printable", "quoted-printable")
		has("base64", "Content-Transfer-Encoding: base64")
		has("iso-8859-1", "charset=iso-8859-1")
		has("rfc2047 subject", "Subject: =?")
		has("rfc2231 filename", "filename*=")
		has("quoted history", "\r\n> ")
		count[m.Kind.String()]++
		switch m.Kind {
		case KindNewsletter:
			for _, h := range []string{"List-Id: ", "List-Unsubscribe: ", "Precedence: bulk"} {
				if !strings.Contains(raw, h) {
					t.Fatalf("newsletter %d lacks %q", i, h)
				}
			}
		case KindAutoReply:
			if !strings.Contains(raw, "Auto-Submitted: auto-replied") || m.InReplyTo == "" {
				t.Fatalf("auto-reply %d lacks Auto-Submitted or In-Reply-To", i)
			}
		case KindInternal:
			if domainOf(m.From) != "acme.example" || m.CompanyID != "" {
				t.Fatalf("internal message %d from %s about %q", i, m.From, m.CompanyID)
			}
		}
		if sm := tag.FindStringSubmatch(m.Subject); sm != nil {
			count["deal tag"]++
			if m.DealID != sm[1] {
				t.Fatalf("message %d tagged %s has DealID %q", i, sm[1], m.DealID)
			}
		}
	}
	t.Logf("%v", count)
	for _, k := range []string{"multipart/alternative", "multipart/mixed", "multipart/related", "quoted-printable", "base64",
		"iso-8859-1", "rfc2047 subject", "rfc2231 filename", "quoted history", "deal tag",
		"conversation", "internal", "newsletter", "autoreply"} {
		if count[k] < 10 {
			t.Errorf("%s: %d messages, want at least 10 in 2000", k, count[k])
		}
	}
}

func TestDirectionsAndOwners(t *testing.T) {
	owners := []mail.Address{{Name: "Acme Sales", Address: "sales@acme.example"}, {Name: "Acme Support", Address: "support@acme.example"}}
	g := New(3, Options{Owners: owners})
	shared := 0
	for i := range 400 {
		dir, owner := Inbound, owners[i%2].Address
		if i%3 == 0 {
			dir = Outbound
		}
		m := g.Generate(Spec{Direction: dir, Owner: owner})
		if m.Direction != dir || m.Owner != owner {
			t.Fatalf("message %d: direction %v owner %s, want %v %s", i, m.Direction, m.Owner, dir, owner)
		}
		rcpts := append(append([]string{}, m.To...), m.Cc...)
		switch dir {
		case Outbound:
			if m.From != owner {
				t.Fatalf("outbound message %d from %s, want %s", i, m.From, owner)
			}
		case Inbound:
			if !contains(rcpts, owner) || m.From == owner {
				t.Fatalf("inbound message %d from %s to %v, want to %s", i, m.From, rcpts, owner)
			}
		}
		if contains(rcpts, owners[0].Address) && contains(rcpts, owners[1].Address) ||
			m.From != owner && contains(rcpts, owners[0].Address) && m.From == owners[1].Address {
			shared++
		}
	}
	if shared == 0 {
		t.Fatal("no message reached both owners")
	}
	for _, d := range []Direction{Inbound, Outbound} {
		g := New(4, Options{Direction: d})
		for i := range 100 {
			if m := g.Generate(Spec{}); m.Direction != d {
				t.Fatalf("Options.Direction %v: message %d is %v", d, i, m.Direction)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDates(t *testing.T) {
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{End: end, Window: 10 * 24 * time.Hour, Count: 300}
	var prev time.Time
	for i, m := range corpus(t, 300, opts) {
		if m.Date.Before(end.Add(-opts.Window)) || m.Date.After(end) {
			t.Fatalf("message %d dated %v, outside the window ending %v", i, m.Date, end)
		}
		if m.Date.Before(prev) {
			t.Fatalf("message %d dated %v, before its predecessor %v", i, m.Date, prev)
		}
		prev = m.Date
	}
	if first := corpus(t, 1, opts)[0].Date; first.After(end.Add(-opts.Window + opts.Window/100)) {
		t.Fatalf("first message dated %v, want near the window start", first)
	}
	at := time.Date(2026, 5, 5, 10, 0, 0, 0, time.UTC)
	if m := New(1, opts).Generate(Spec{Date: at}); !m.Date.Equal(at) {
		t.Fatalf("Spec.Date: got %v, want %v", m.Date, at)
	}
}
