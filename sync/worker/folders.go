package worker

import (
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/sync/imapconn"
)

// Mailbox is a mailbox name with its SPECIAL-USE attributes (RFC 6154).
type Mailbox struct {
	Name  string
	Attrs []imap.MailboxAttr
}

// ListMailboxes lists the account's mailboxes, with SPECIAL-USE
// attributes when the server has them.
func ListMailboxes(ctx context.Context, conn *imapconn.Conn) ([]Mailbox, error) {
	var list []*imap.ListData
	err := conn.Do(ctx, "list", func(c *imapclient.Client) error {
		var opts *imap.ListOptions
		if conn.Caps().Has(imap.CapSpecialUse) {
			opts = &imap.ListOptions{ReturnSpecialUse: true}
		}
		var err error
		list, err = c.List("", "*", opts).Collect()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Mailbox, len(list))
	for i, l := range list {
		out[i] = Mailbox{Name: l.Mailbox, Attrs: l.Attrs}
	}
	return out, nil
}

// folderRoles are the folder roles of config.IsFolderRole with their
// SPECIAL-USE attributes (RFC 6154).
var folderRoles = []struct {
	role string
	attr imap.MailboxAttr
}{
	{"sent", imap.MailboxAttrSent},
	{"archive", imap.MailboxAttrArchive},
	{"all", imap.MailboxAttrAll},
}

// ResolveFolder finds a folders entry on the server: inbox is INBOX, a role
// is the folder with that SPECIAL-USE attribute (or the role's common
// name, for servers without SPECIAL-USE), anything else a literal name.
// It returns the mailbox name and its role; errors say what the server has
// instead, e.g. "folder 'Sent Items' not found; the server's sent folder
// is 'Sent'".
func ResolveFolder(entry string, boxes []Mailbox) (name, role string, err error) {
	if entry == "inbox" {
		return "INBOX", "inbox", nil
	}
	for _, cr := range folderRoles {
		if entry != cr.role {
			continue
		}
		for _, b := range boxes {
			if hasAttr(b.Attrs, cr.attr) {
				return b.Name, cr.role, nil
			}
		}
		for _, b := range boxes {
			if strings.EqualFold(b.Name, entry) {
				return b.Name, cr.role, nil
			}
		}
		return "", "", fmt.Errorf("folder role %s: no folder has SPECIAL-USE %s; the server has %s", entry, cr.attr, boxNames(boxes))
	}
	for _, b := range boxes {
		if b.Name == entry || (strings.EqualFold(entry, "INBOX") && strings.EqualFold(b.Name, "INBOX")) {
			return b.Name, roleOf(b.Attrs), nil
		}
	}
	var hints []string
	for _, cr := range folderRoles {
		for _, b := range boxes {
			if hasAttr(b.Attrs, cr.attr) {
				hints = append(hints, fmt.Sprintf("the server's %s folder is '%s'", cr.role, b.Name))
			}
		}
	}
	for _, b := range boxes {
		if strings.EqualFold(b.Name, entry) {
			hints = append([]string{fmt.Sprintf("names are case-sensitive: did you mean '%s'?", b.Name)}, hints...)
		}
	}
	if len(hints) == 0 {
		hints = append(hints, "the server has "+boxNames(boxes))
	}
	return "", "", fmt.Errorf("folder '%s' not found; %s", entry, strings.Join(hints, "; "))
}

func hasAttr(attrs []imap.MailboxAttr, want imap.MailboxAttr) bool {
	for _, a := range attrs {
		if strings.EqualFold(string(a), string(want)) {
			return true
		}
	}
	return false
}

// boxNames lists up to 10 folder names for an error message.
func boxNames(boxes []Mailbox) string {
	var names []string
	for i, b := range boxes {
		if i == 10 {
			names = append(names, fmt.Sprintf("and %d more", len(boxes)-10))
			break
		}
		names = append(names, "'"+b.Name+"'")
	}
	if len(names) == 0 {
		return "no folders"
	}
	return strings.Join(names, ", ")
}

func roleOf(attrs []imap.MailboxAttr) string {
	for _, cr := range folderRoles {
		if hasAttr(attrs, cr.attr) {
			return cr.role
		}
	}
	return ""
}
