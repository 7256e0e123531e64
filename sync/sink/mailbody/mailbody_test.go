package mailbody

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

func TestExtract(t *testing.T) {
	p := Extract(sinktest.Body(1, 8<<10), 1<<20)
	if !strings.Contains(p.Text, "Grüße") && !strings.Contains(p.Text, "quote") {
		t.Errorf("Text = %.80q, want the text part", p.Text)
	}
	if !strings.Contains(p.HTML, "<p ") {
		t.Errorf("HTML = %.80q, want the html part", p.HTML)
	}
	latin1 := "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe\r\n"
	if got := Extract([]byte(latin1), 100).Text; got != "Grüße\r\n" {
		t.Errorf("latin-1 Text = %q", got)
	}
}

func TestClipAndSafeHTML(t *testing.T) {
	if got := Clip("aü", 2); got != "a" {
		t.Errorf("Clip = %q, want a", got)
	}
	if got, want := SafeHTML("<b>x</b>\r\ny"), "&lt;b&gt;x&lt;/b&gt;<br>y"; got != want {
		t.Errorf("SafeHTML = %q, want %q", got, want)
	}
}

// FuzzExtract: any input, truncated or malformed, yields bodies of valid
// UTF-8 within the limit, and SafeHTML of the text has no raw markup.
func FuzzExtract(f *testing.F) {
	f.Add([]byte("Content-Type: text/plain; charset=utf-8\r\n\r\nhello <b>x</b>\r\n"), 64)
	f.Add([]byte("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<p>\xe9</p>\r\n--b--\r\n"), 16)
	f.Add([]byte("Content-Transfer-Encoding: base64\r\n\r\n////"), 3)
	f.Fuzz(func(t *testing.T, raw []byte, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		p := Extract(raw, max)
		for name, s := range map[string]string{"text": p.Text, "html": p.HTML} {
			if !utf8.ValidString(s) || len(s) > max {
				t.Fatalf("%s: %d bytes (max %d), valid UTF-8 %v", name, len(s), max, utf8.ValidString(s))
			}
		}
		if h := SafeHTML(p.Text); strings.ContainsAny(strings.ReplaceAll(h, "<br>", ""), "<>") {
			t.Fatalf("SafeHTML left markup: %q", h)
		}
	})
}
