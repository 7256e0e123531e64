package worker

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestResolveFolder(t *testing.T) {
	boxes := []Mailbox{
		{Name: "INBOX"},
		{Name: "Sent", Attrs: []imap.MailboxAttr{imap.MailboxAttrSent}},
		{Name: "Archives/2024"},
		{Name: "Gesendet Elemente", Attrs: []imap.MailboxAttr{`\sent`}},
	}
	tests := []struct {
		entry, name, role, err string
	}{
		{"inbox", "INBOX", "inbox", ""},
		{"INBOX", "INBOX", "", ""},
		{"sent", "Sent", "sent", ""},
		{"Archives/2024", "Archives/2024", "", ""},
		{"archive", "", "", "no folder has SPECIAL-USE"},
		{"Sent Items", "", "", "folder 'Sent Items' not found; the server's sent folder is 'Sent'"},
		{"sent items", "", "", "not found"},
	}
	for _, tt := range tests {
		name, role, err := ResolveFolder(tt.entry, boxes)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ResolveFolder(%q) error = %v, want it to contain %q", tt.entry, err, tt.err)
			}
			continue
		}
		if err != nil || name != tt.name || role != tt.role {
			t.Errorf("ResolveFolder(%q) = %q, %q, %v; want %q, %q", tt.entry, name, role, err, tt.name, tt.role)
		}
	}
}
