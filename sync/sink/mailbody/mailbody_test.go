package mailbody

import (
	"strings"
	"testing"

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
