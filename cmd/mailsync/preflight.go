package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/matcher/filedir"
	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/sink"
)

// finding is one result of the preflight: what run would refuse (fail) or
// start with but tell the admin about (warn). The message names the key.
type finding struct {
	subject string // for check's line: "config", an account id, "sink jsonl", ...
	err     error
	warn    bool
	// usage marks a config that names something wrong or missing (exit
	// 2); otherwise the environment is at fault (exit 1).
	usage bool
}

// preflight checks, without starting anything, writing anything or taking
// the state file's lock, everything run refuses at start. run and check
// both call it, so check fails exactly where run would. daemonRunning says
// a daemon answers on the control socket: admin.listen is then its own.
func preflight(cfg *config.Config, daemonRunning bool) []finding {
	var out []finding
	add := func(subject string, usage bool, err error) {
		if err != nil {
			out = append(out, finding{subject: subject, err: err, usage: usage})
		}
	}
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		if a.Auth == "password" {
			_, err := a.Password()
			add(a.ID, true, err)
			if w := secretFileWarning(a.Path()+".password_file", a.PasswordFile); w != nil {
				out = append(out, finding{subject: a.ID, err: w, warn: true})
			}
		}
	}
	if cfg.Tokens.HasKey() && hasOAuth(cfg) {
		if _, err := cfg.Tokens.Key(); err != nil {
			add("tokens", true, err)
		}
	}
	add("state file", false, stateWritable(cfg.State))
	if _, err := sink.Parse(cfg.Sink.Type, cfg.SinkSettings()); err != nil {
		add("sink "+cfg.Sink.Type, true, err)
	}
	if p := cfg.Matcher.DirectoryFile; p != "" {
		if _, err := filedir.Open(p, filedir.Options{}); err != nil {
			add("matcher", true, fmt.Errorf("matcher.directory_file: %w", err))
		}
	}
	if cfg.Admin.Listen != "" && !daemonRunning {
		add("admin", false, listenFree(cfg.Admin.Listen))
	}
	if p := cfg.Admin.TokenFile; p != "" {
		if _, err := os.ReadFile(p); err != nil {
			add("admin", true, fmt.Errorf("admin.token_file: %w (create it, e.g. head -c 32 /dev/urandom | base64 > %s, or remove the key to turn the send API off)", plainPathError(err), p))
		}
	}
	return out
}

func hasOAuth(cfg *config.Config) bool {
	for _, a := range cfg.Accounts {
		if a.Auth == "oauth2" {
			return true
		}
	}
	return false
}

// preflightError is run's refusal: every failure, one per line; exit 2 if
// any is the config's fault.
func preflightError(fs []finding) error {
	var errs []error
	usage := false
	for _, f := range fs {
		if f.warn {
			continue
		}
		errs = append(errs, f.err)
		usage = usage || f.usage
	}
	if len(errs) == 0 {
		return nil
	}
	code := exitFailure
	if usage {
		code = exitUsage
	}
	return &exitError{code: code, err: errors.Join(errs...)}
}

// plainPathError drops the *fs.PathError's "open" verb: the message names
// the path already ("open /x: no such file" -> "/x: no such file or directory").
func plainPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// stateWritable proves the state file can be opened for writing, or
// created, without opening it as bbolt (which would lock it).
func stateWritable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("state: %s is a directory", path)
	case err == nil:
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("state: cannot write %s: %w", path, plainPathError(err))
		}
		return f.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("state: %w", plainPathError(err))
	}
	// The store creates missing directories: test the nearest one that
	// exists.
	dir := filepath.Dir(path)
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	f, err := os.CreateTemp(dir, ".mailsync-check-*")
	if err != nil {
		return fmt.Errorf("state: cannot create %s: directory %s is not writable", path, dir)
	}
	f.Close()
	return os.Remove(f.Name())
}

// listenFree binds addr and lets it go.
func listenFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("admin.listen: %s is already in use by another program (or another mailsync)", addr)
		}
		return fmt.Errorf("admin.listen: %s: %w", addr, err)
	}
	return ln.Close()
}

// secretFileWarning warns of a secret file that other users may read, as
// the state file's check does.
func secretFileWarning(key, path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s is readable by other users (mode %#o); chmod 600 it", key, path, fi.Mode().Perm())
}

// directoryWarnings names the accounts that capture only matched mail
// while nothing can match: no directory file and a sink that looks no
// records up (the caller asserts matcher.Directory on the sink it opened).
// Only a subject tag could still match.
func directoryWarnings(cfg *config.Config, sinkHasDirectory bool) []error {
	if cfg.Matcher.DirectoryFile != "" || sinkHasDirectory {
		return nil
	}
	var out []error
	for _, a := range cfg.Accounts {
		if c := a.Matcher.Capture; c != "" && c != matcher.CaptureMatched {
			continue
		}
		out = append(out, fmt.Errorf("%s.matcher.capture: matched, but there is no directory to match against (no matcher.directory_file, and sink %s looks no records up): mail will be skipped as no_match unless a tag names a record; set matcher.directory_file (see examples/directory.csv) or capture: all", a.Path(), cfg.Sink.Type))
	}
	return out
}

// startNowNotes says, once per account, that start: now leaves the mail
// already in its folders alone, and how to import it.
func startNowNotes(cfg *config.Config) []accountNote {
	var out []accountNote
	for _, a := range cfg.Accounts {
		if a.Start != "now" {
			continue
		}
		out = append(out, accountNote{a.ID, fmt.Sprintf("%s.start: now: mail already in %s is left alone; only mail arriving from now on is synced. Import older mail with: mailsync backfill --account %s --folder %s --since 90d",
			a.Path(), strings.Join(a.Folders, ", "), a.ID, a.Folders[0])})
	}
	return out
}

// accountNote is a line about one account.
type accountNote struct{ account, text string }

// smtpReachable opens a TCP connection to an account's submission server.
func smtpReachable(ctx context.Context, a *config.Account) error {
	if !a.CanSend() {
		return nil
	}
	addr := net.JoinHostPort(a.SMTP.Host, fmt.Sprint(a.SMTP.Port))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s.smtp.host: %s: %s", a.Path(), addr, plainConnectError(err))
	}
	return conn.Close()
}

// checkSMTP reports whether the submission server answers.
func checkSMTP(ctx context.Context, r *checkReport, a *config.Account) {
	if !a.CanSend() {
		return
	}
	if err := smtpReachable(ctx, a); err != nil {
		r.fail(a.ID, "%v", err)
		return
	}
	r.pass(a.ID, "smtp: %s:%d reachable", a.SMTP.Host, a.SMTP.Port)
}

// daemonAnswers reports whether a daemon answers on cfg's control socket.
func daemonAnswers(ctx context.Context, cfg *config.Config) bool {
	c, err := control.Dial(control.SocketPath(cfg))
	if err != nil {
		return false
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Status(ctx)
	return err == nil
}
