package dovecottest

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// identity is who the Dovecot processes run as. Dovecot refuses to run login
// processes or mail access as root, so under root the login and mail processes
// use "nobody"; as a normal user everything runs as that user and chroots are
// turned off (chroot needs root).
type identity struct {
	root          bool
	internalUser  string
	internalGroup string
	loginUser     string
	mailUID       int
	mailGID       int
}

func currentIdentity() (identity, error) {
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			return identity{}, fmt.Errorf("look up user nobody: %w", err)
		}
		uid, err1 := strconv.Atoi(nobody.Uid)
		gid, err2 := strconv.Atoi(nobody.Gid)
		if err1 != nil || err2 != nil {
			return identity{}, fmt.Errorf("user nobody has non-numeric ids %q/%q", nobody.Uid, nobody.Gid)
		}
		return identity{
			root: true, internalUser: "root", internalGroup: "root",
			loginUser: "nobody", mailUID: uid, mailGID: gid,
		}, nil
	}
	me, err := user.Current()
	if err != nil {
		return identity{}, fmt.Errorf("look up current user: %w", err)
	}
	grp, err := user.LookupGroupId(me.Gid)
	if err != nil {
		return identity{}, fmt.Errorf("look up group %s: %w", me.Gid, err)
	}
	return identity{
		internalUser: me.Username, internalGroup: grp.Name, loginUser: me.Username,
		mailUID: os.Geteuid(), mailGID: os.Getegid(),
	}, nil
}

// chrootedServices are the Dovecot 2.3 services whose default has a chroot;
// a non-root instance must clear them or the master fails to start them.
var chrootedServices = []string{
	"aggregator", "anvil", "director", "imap-login", "imap-urlauth-login",
	"ipc", "old-stats", "pop3-login", "submission-login",
}

// configData feeds configTemplate.
type configData struct {
	Dir           string
	InternalUser  string
	InternalGroup string
	LoginUser     string
	MailUID       int
	MailGID       int
	Port          int
	TLSPort       int
	LMTPPort      int
	SSL           string
	CertFile      string
	KeyFile       string
	NoKeywords    bool
	Chroots       []string
	Extra         []string
}

var configTemplate = template.Must(template.New("dovecot.conf").Parse(`# Written by mailsync's dovecottest harness; nothing from /etc/dovecot is read.
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
instance_name = dovecottest-{{.Port}}
log_path = {{.Dir}}/dovecot.log
protocols = imap{{if .LMTPPort}} lmtp{{end}}
listen = 127.0.0.1
shutdown_clients = yes

default_internal_user = {{.InternalUser}}
default_internal_group = {{.InternalGroup}}
default_login_user = {{.LoginUser}}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {{.MailUID}}
mail_gid = {{.MailGID}}

# Tests open many sessions per user from 127.0.0.1 (one per folder worker plus
# assertion clients); Dovecot's default of 10 would refuse some.
mail_max_userip_connections = 200
# Tests check bad-password handling; the default 2 s delay only slows them.
auth_failure_delay = 0
auth_verbose = no
auth_debug = no
auth_cache_size = 0
disable_plaintext_auth = no
auth_mechanisms = plain login

ssl = {{.SSL}}
{{- if .CertFile}}
ssl_cert = <{{.CertFile}}
ssl_key = <{{.KeyFile}}
ssl_min_protocol = TLSv1.2
{{- end}}

mail_location = maildir:~/Maildir:LAYOUT=fs
# Fall back to a 1 s poll if inotify is unavailable, so IDLE still notices
# other sessions' changes quickly.
mailbox_idle_check_interval = 1 secs
imap_idle_notify_interval = 2 mins
{{- if .NoKeywords}}
mail_plugins = acl
plugin {
  acl = vfile:{{.Dir}}/global-acl
}
{{- else}}
mail_plugins =
{{- end}}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{.Dir}}/users
}
userdb {
  driver = passwd-file
  args = username_format=%u {{.Dir}}/users
}

namespace inbox {
  inbox = yes
  separator = /
  prefix =
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Archive {
    special_use = \Archive
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
}

# Tests check bad-password handling, and Dovecot's per-IP auth penalty (2-15 s,
# also delaying the next good login) would stall them. No setting turns it
# off; auth skips it silently when its anvil socket does not exist, so the
# socket gets another name.
service anvil {
  unix_listener anvil-auth-penalty {
    path = anvil-auth-penalty-disabled
  }
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{.Port}}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = {{.TLSPort}}
    ssl = yes
  }
}
{{- if .LMTPPort}}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{.LMTPPort}}
  }
}
protocol lmtp {
  # Mail arrives for alice@any.domain; the users file knows "alice".
  auth_username_format = %Ln
}
{{- end}}
{{- range .Chroots}}
service {{.}} {
  chroot =
}
{{- end}}
{{range .Extra}}
{{.}}
{{end}}`))

// renderConfig returns dovecot.conf for the instance rooted at dir.
func renderConfig(dir string, id identity, o *options, port, tlsPort, lmtpPort int) ([]byte, error) {
	d := configData{
		Dir: dir, InternalUser: id.internalUser, InternalGroup: id.internalGroup, LoginUser: id.loginUser,
		MailUID: id.mailUID, MailGID: id.mailGID, Port: port, TLSPort: tlsPort, LMTPPort: lmtpPort, SSL: "no", NoKeywords: o.noKeywords, Extra: o.extra}
	if o.tls {
		d.SSL = "yes"
		d.CertFile = filepath.Join(dir, "server.pem")
		d.KeyFile = filepath.Join(dir, "server.key")
	}
	if !id.root {
		d.Chroots = chrootedServices
	}
	if err := o.renderOAuth2(dir, &d); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render dovecot.conf: %w", err)
	}
	return buf.Bytes(), nil
}

// renderPasswd returns the passwd-file: user:{PLAIN}password:uid:gid:::home.
// uid and gid stay empty, so mail_uid/mail_gid apply, unless uids gives
// the user its own.
func renderPasswd(dir string, users map[string]string, uids map[string]int, gid int) ([]byte, error) {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, u := range names {
		p := users[u]
		if u == "" || strings.ContainsAny(u, ":\r\n/") || strings.ContainsAny(p, ":\r\n") {
			// The password itself stays out of the error.
			return nil, fmt.Errorf("user %q: names may not be empty or contain ':', '/' or line breaks, passwords not ':' or line breaks", u)
		}
		if uid, ok := uids[u]; ok {
			fmt.Fprintf(&buf, "%s:{PLAIN}%s:%d:%d::%s::\n", u, p, uid, gid, homeDir(dir, u))
			continue
		}
		fmt.Fprintf(&buf, "%s:{PLAIN}%s::::%s::\n", u, p, homeDir(dir, u))
	}
	return buf.Bytes(), nil
}

// globalACL denies the "w" right (flags other than \Seen and \Deleted, and
// with it all keywords) while keeping everything else an owner may do.
const globalACL = "* owner lrstipekxa\n"

func homeDir(dir, user string) string { return filepath.Join(dir, "home", user) }
