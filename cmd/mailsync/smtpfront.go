package main

import (
	"crypto/tls"
	"fmt"
	"slices"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/outbound"
	"github.com/mailsync/mailsync/sync/smtpfront"
)

// startSMTPFront starts the SMTP front when smtp_front.listen is set; the
// returned stop lets sessions finish within sync.shutdown_grace.
func (d *daemon) startSMTPFront() (stop func(), err error) {
	f := d.cfg.SMTPFront
	if !f.Enabled() {
		return func() {}, nil
	}
	for _, p := range smtpFrontProblems(d.cfg) {
		d.log.Warn("smtp front: " + p)
	}
	linker, _ := d.sink.(outbound.SentLinker)
	srv, err := smtpfront.Listen(f, smtpfront.Deps{Sender: d.sender, Linker: linker, Logger: d.log})
	if err != nil {
		return nil, err
	}
	return func() { srv.Stop(d.cfg.Sync.ShutdownGrace) }, nil
}

// smtpFrontProblems lists what would keep a CRM from sending through the
// front although the config is valid: the credentials file or the
// certificate cannot be loaded, or the file names accounts that do not
// exist or cannot send. Nothing in it is a secret.
func smtpFrontProblems(cfg *config.Config) []string {
	f := cfg.SMTPFront
	var out []string
	if f.TLS != "none" {
		if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
			out = append(out, fmt.Sprintf("smtp_front.cert_file, key_file: %v", err))
		}
	}
	creds, err := smtpfront.LoadCredentials(f.CredentialsFile)
	if err != nil {
		return append(out, err.Error())
	}
	ids := creds.Accounts()
	slices.Sort(ids)
	for _, id := range ids {
		a, ok := cfg.Account(id)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("smtp_front.credentials_file names account %s, which is not configured", id))
		case !a.CanSend():
			out = append(out, fmt.Sprintf("smtp_front.credentials_file names account %s, which has no smtp.host: its mail would be refused", id))
		}
	}
	return out
}

// checkSMTPFront is `mailsync check`'s line for the front.
func checkSMTPFront(r *checkReport, cfg *config.Config) {
	f := cfg.SMTPFront
	if !f.Enabled() {
		return
	}
	problems := smtpFrontProblems(cfg)
	if len(problems) == 0 {
		r.pass("smtp_front", "%s (tls %s): certificate and credentials load", f.Listen, f.TLS)
		return
	}
	for _, p := range problems {
		r.fail("smtp_front", "%s", p)
	}
}
