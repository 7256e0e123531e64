package matcher

import (
	"slices"
	"testing"
)

func TestNormalizeAddress(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"alice@acme.com", "alice@acme.com", false},
		{"  Alice.Carter@ACME.Com ", "alice.carter@acme.com", false},
		{"<bob@acme.com>", "bob@acme.com", false},
		{"greta@xn--bcher-kva.de", "greta@bücher.de", false},
		{"greta@XN--BCHER-KVA.DE", "greta@bücher.de", false},
		{"greta@BÜCHER.de", "greta@bücher.de", false},
		{"Jürgen@Bücher.DE", "jürgen@bücher.de", false},
		{"ｆｕｌｌ@ｗｉｄｔｈ.com", "ｆｕｌｌ@width.com", false}, // width-mapped domain, local part only lower-cased
		{"user@example.com.", "user@example.com", false},
		{"user@[192.0.2.1]", "user@[192.0.2.1]", false},
		{"under_score@my_host.example", "under_score@my_host.example", false},
		{"\"quoted local\"@example.com", "\"quoted local\"@example.com", false},
		{"plain", "", true},
		{"@example.com", "", true},
		{"user@", "", true},
		{"bad\xffutf8@x.com", "", true},
		{"user@xn--zz.com", "user@xn--zz.com", true}, // invalid punycode: key kept, error reported
	} {
		got, err := NormalizeAddress(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFoldPlus(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"john+crm@x.com", "john@x.com"},
		{"john+a+b@x.com", "john@x.com"},
		{"john@x.com", "john@x.com"},
		{"+john@x.com", "+john@x.com"},                   // not a sub-address
		{"\"a+b\"@x.com", "\"a+b\"@x.com"},               // quoted local part
		{"john@plus+domain.com", "john@plus+domain.com"}, // '+' after the @ is not folded
		{"nodomain", "nodomain"},
	} {
		if got := FoldPlus(tc.in); got != tc.want {
			t.Errorf("FoldPlus(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParentDomains(t *testing.T) {
	if got, want := parentDomains("eu.mail.acme.com"), []string{"eu.mail.acme.com", "mail.acme.com", "acme.com"}; !slices.Equal(got, want) {
		t.Errorf("parentDomains = %v, want %v", got, want)
	}
	if got, want := parentDomains("acme.com"), []string{"acme.com"}; !slices.Equal(got, want) {
		t.Errorf("parentDomains = %v, want %v", got, want)
	}
	if got, want := parentDomains("localhost"), []string{"localhost"}; !slices.Equal(got, want) {
		t.Errorf("parentDomains = %v, want %v", got, want)
	}
}

func TestDomainMatches(t *testing.T) {
	for _, tc := range []struct {
		d, s string
		want bool
	}{
		{"ourco.com", "ourco.com", true},
		{"mail.ourco.com", "ourco.com", true},
		{"notourco.com", "ourco.com", false},
		{"ourco.com.evil", "ourco.com", false},
	} {
		if got := domainMatches(tc.d, tc.s); got != tc.want {
			t.Errorf("domainMatches(%q, %q) = %v, want %v", tc.d, tc.s, got, tc.want)
		}
	}
}

func TestFreemail(t *testing.T) {
	f := newFreemail([]string{"corp-mail.example", "webmail.*"})
	for _, tc := range []struct {
		d    string
		want bool
	}{
		{"gmail.com", true},
		{"googlemail.com", true},
		{"hotmail.co.uk", true},
		{"hotmail.de", true},
		{"live.com", true},
		{"yahoo.co.jp", true},
		{"gmx.net", true},
		{"web.de", true},
		{"corp-mail.example", true},
		{"webmail.fr", true},
		{"acme.com", false},
		{"hotmail.evil.example.com", false}, // too many labels after the name
		{"mail.gmail.com.example", false},
	} {
		if got := f.has(tc.d); got != tc.want {
			t.Errorf("freemail %q = %v, want %v", tc.d, got, tc.want)
		}
	}
}
