package mailgen

import (
	"bytes"
	"encoding/csv"
	"io"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

func TestDirectory(t *testing.T) {
	rows, err := csv.NewReader(bytes.NewReader(Directory())).ReadAll()
	if err != nil {
		t.Fatalf("read directory: %v", err)
	}
	if got, want := strings.Join(rows[0], ","), "email,kind,id,name,company,domain,deals"; got != want {
		t.Fatalf("header = %q, want %q", got, want)
	}
	kinds := map[string]int{}
	byID := map[string][]string{}
	for _, r := range rows[1:] {
		kinds[r[1]]++
		byID[r[2]] = r
		if r[1] == "contact" && byID[r[4]] == nil {
			t.Fatalf("contact %s names company %q before or without its company row", r[2], r[4])
		}
		if r[6] == "" {
			continue
		}
		for _, d := range strings.Split(r[6], ";") {
			f := strings.Split(d, ":")
			if len(f) != 4 || !strings.HasPrefix(f[0], "DEAL-") || f[2] != "open" && f[2] != "won" && f[2] != "lost" {
				t.Fatalf("row %s: malformed deal %q", r[2], d)
			}
			if _, err := time.Parse("2006-01-02", f[3]); err != nil {
				t.Fatalf("row %s: deal close date: %v", r[2], err)
			}
		}
	}
	if kinds["company"] != 12 || kinds["contact"] != 40 || kinds["lead"] != 1 {
		t.Fatalf("row kinds = %v, want 12 companies, 40 contacts, 1 lead", kinds)
	}
	// The directory must describe the generated mail: every contact the
	// generator names as ground truth is a party of its message.
	checked := 0
	for i, m := range corpus(t, 500, Options{}) {
		if m.ContactID == "" {
			continue
		}
		r := byID[m.ContactID]
		if r == nil {
			t.Fatalf("message %d: contact %s not in directory", i, m.ContactID)
		}
		if parties := append(append([]string{m.From}, m.To...), m.Cc...); !contains(parties, r[0]) {
			t.Fatalf("message %d: contact %s <%s> is not among %v", i, m.ContactID, r[0], parties)
		}
		if m.CompanyID != "" && r[4] != m.CompanyID {
			t.Fatalf("message %d: contact %s belongs to %s, message says %s", i, m.ContactID, r[4], m.CompanyID)
		}
		checked++
	}
	if checked < 200 {
		t.Fatalf("only %d of 500 messages name a contact", checked)
	}
	if got := New(1, Options{}).Directory(); !bytes.Equal(got, Directory()) {
		t.Fatal("default generator's directory differs from Directory()")
	}
}

func TestMalformed(t *testing.T) {
	has := func(s string) func([]byte) bool { return func(b []byte) bool { return bytes.Contains(b, []byte(s)) } }
	defect := map[string]func([]byte) bool{
		"broken-boundary":      func(b []byte) bool { return has(`boundary="outer-123"`)(b) && !has("--outer-123")(b) },
		"missing-message-id":   func(b []byte) bool { return !has("Message-ID")(b) },
		"duplicate-message-id": func(b []byte) bool { return bytes.Count(b, []byte("Message-ID:")) == 2 },
		"invalid-utf8-headers": func(b []byte) bool { h, _, _ := bytes.Cut(b, []byte("\r\n\r\n")); return !utf8Valid(h) },
		"unknown-charset":      has("charset=x-unknown-9"),
		"header-without-colon": has("\r\nX-Broken header line without colon\r\n"),
		"long-line-2mb": func(b []byte) bool {
			_, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
			return len(body) >= 2<<20 && !bytes.Contains(body, []byte("\n"))
		},
		"nul-bytes":                 has("\x00"),
		"truncated-base64":          func(b []byte) bool { return bytes.HasSuffix(b, []byte("ZW5kb2JqCjIgMCBv")) && !has("--b1--")(b) },
		"empty-body":                func(b []byte) bool { return bytes.HasSuffix(b, []byte("\r\n\r\n")) },
		"headers-only":              func(b []byte) bool { return !has("\r\n\r\n")(b) },
		"bare-lf":                   func(b []byte) bool { return !has("\r")(b) && has("\n")(b) },
		"deep-nesting":              func(b []byte) bool { return bytes.Count(b, []byte("multipart/mixed")) >= 200 },
		"garbage-date":              has("Date: yesterday around noon"),
		"unknown-transfer-encoding": has("Content-Transfer-Encoding: x-uuencode-9"),
	}
	samples := Malformed()
	if len(samples) != len(defect) {
		t.Fatalf("Malformed() returned %d samples, want %d", len(samples), len(defect))
	}
	for _, s := range samples {
		check, ok := defect[s.Name]
		if !ok {
			t.Fatalf("unexpected sample %q", s.Name)
		}
		delete(defect, s.Name)
		if s.Desc == "" || !check(s.Raw) {
			t.Errorf("sample %q does not carry its defect (or lacks a description)", s.Name)
		}
		// go-message, which mailsync uses, must get through each sample
		// without panicking; reading is bounded so a loop would fail.
		mr, err := gomail.CreateReader(bytes.NewReader(s.Raw))
		if err != nil {
			continue
		}
		for range 300 {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			_, _ = io.Copy(io.Discard, p.Body)
		}
	}
	if a, b := Malformed(), Malformed(); !bytes.Equal(a[6].Raw, b[6].Raw) {
		t.Fatal("Malformed() is not the same on every call")
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// FuzzGenerate checks that any seed and size target yields messages
// go-message parses completely.
func FuzzGenerate(f *testing.F) {
	f.Add(int64(1), uint16(27))
	f.Add(int64(-5), uint16(2))
	f.Add(int64(1<<40), uint16(200))
	f.Fuzz(func(t *testing.T, seed int64, kb uint16) {
		g := New(seed, Options{AvgSize: int(kb%300+1) * 1000, Count: 20})
		seen := map[string]bool{}
		for i := range 20 {
			m := g.Generate(Spec{})
			if _, _, err := parse(m.Raw); err != nil {
				t.Fatalf("seed %d message %d: %v", seed, i, err)
			}
			if seen[m.ID] {
				t.Fatalf("seed %d message %d repeats id %s", seed, i, m.ID)
			}
			seen[m.ID] = true
		}
	})
}

func BenchmarkNext(b *testing.B) {
	g := New(1, Options{})
	var bytes int64
	for b.Loop() {
		bytes += int64(len(g.Next()))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/1e6, "MB/s")
}

func TestSparseCast(t *testing.T) {
	for name, opts := range map[string]Options{
		"strangers only":        {Companies: []Company{}, Colleagues: []Contact{}},
		"empty company ignored": {Companies: []Company{{ID: "C-9", Name: "Ghost", Domain: "ghost.example"}}, Strangers: []Contact{}},
		"one company":           {Companies: DefaultCompanies()[:1], Strangers: []Contact{}, Newsletters: []Newsletter{}},
	} {
		t.Run(name, func(t *testing.T) {
			g := New(2, opts)
			for i := range 150 {
				m := g.Generate(Spec{})
				if _, _, err := parse(m.Raw); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if name == "strangers only" && m.CompanyID != "" {
					t.Fatalf("message %d names company %s with no companies configured", i, m.CompanyID)
				}
				if name == "one company" && m.Kind == KindNewsletter {
					t.Fatalf("message %d is a newsletter with none configured", i)
				}
			}
		})
	}
}
