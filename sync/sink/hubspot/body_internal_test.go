package hubspot

import (
	"testing"

	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

func TestBodies(t *testing.T) {
	text, html := bodies(sinktest.Message("msg_engagement", 8192).Body)
	if text == "" || html == "" {
		t.Fatalf("bodies() = %q, %q", text[:min(len(text), 40)], html[:min(len(html), 40)])
	}
}
