package control

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRouteSegments checks that any account and folder name the client
// escapes into a path reaches the daemon unchanged: IMAP folder names hold
// '/', '%', spaces, dots and non-ASCII, and a mangled one would resync the
// wrong folder.
func FuzzRouteSegments(f *testing.F) {
	for _, s := range [][2]string{
		{"sales", "INBOX"}, {"sales", "Archive/2024 Q1"}, {"a b", ".."}, {"x", "."},
		{"sales", "100%"}, {"sales", "Gesendete Objekte/Ü"}, {"q?x", "#frag"}, {"s", "a//b"},
		{"s", "%2F"}, {"s", "a/../b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, account, folder string) {
		if account == "" || folder == "" || !utf8.ValidString(account) || !utf8.ValidString(folder) {
			return
		}
		// net/http's ServeMux reads a segment that unescapes to exactly
		// "/" as its trailing-slash marker, so such a name cannot be
		// routed. No IMAP mailbox is named by its delimiter alone.
		if account == "/" || folder == "/" {
			return
		}
		d := &fakeDaemon{}
		h := newHandler(d, nil)
		url := "http://mailsync/v1/accounts/" + seg(account) + "/folders/" + seg(folder) + "/resync"
		req, err := http.NewRequest(http.MethodPost, url, nil)
		if err != nil {
			t.Fatalf("client-built URL %q does not parse: %v", url, err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := fmt.Sprintf("resync %s %s", account, folder)
		if got := d.lastCall(); got != want {
			t.Fatalf("URL %q reached the daemon as %q (status %d), want %q", url, got, rec.Code, want)
		}
		if strings.Contains(url, "?") || strings.Contains(url, "#") {
			t.Fatalf("URL %q has an unescaped query or fragment", url)
		}
	})
}
