package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"time"

	"github.com/mailsync/mailsync/config"
)

// SocketName is the control socket's file name in its default places.
const SocketName = "mailsync.sock"

// maxSocketPath is the longest path a unix socket address holds on Linux
// (sun_path is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// probeTimeout bounds the connect that tells a live socket from a stale one.
const probeTimeout = time.Second

// ErrSocketInUse is returned by Listen when another process answers on the
// socket path: a second daemon must not take over a running one's socket.
var ErrSocketInUse = errors.New("another mailsync daemon answers on the control socket")

// SocketPath returns where the daemon listens and the CLI connects:
// admin.socket if set, else $RUNTIME_DIRECTORY/mailsync.sock (systemd's
// RuntimeDirectory=), else mailsync.sock next to the state file.
func SocketPath(cfg *config.Config) string {
	if cfg.Admin.Socket != "" {
		return cfg.Admin.Socket
	}
	if dir := runtimeDirectory(); dir != "" {
		return filepath.Join(dir, SocketName)
	}
	return filepath.Join(filepath.Dir(cfg.State), SocketName)
}

// LinkPath returns where the daemon keeps a symlink to its socket, or "" when
// none is needed. Under systemd the socket lives in $RUNTIME_DIRECTORY, but
// an operator's shell does not have that variable, so the CLI looks next to
// the state file; the link there makes both find the same socket.
func LinkPath(cfg *config.Config) string {
	if cfg.Admin.Socket != "" || runtimeDirectory() == "" {
		return ""
	}
	link := filepath.Join(filepath.Dir(cfg.State), SocketName)
	if link == SocketPath(cfg) {
		return ""
	}
	return link
}

// runtimeDirectory is the first entry of $RUNTIME_DIRECTORY; systemd joins
// several RuntimeDirectory= entries with colons.
func runtimeDirectory() string {
	dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return dir
}

// Listen creates the control socket at path with mode 0600, so only the
// daemon's user (and root) can talk to it.
//
// A socket file left behind by a daemon that died is removed, but only when
// nothing answers on it; if a process answers, Listen fails with an error
// wrapping ErrSocketInUse. A path that exists and is neither a socket nor a
// symlink is never replaced. Closing the listener removes the socket file.
func Listen(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket %s: path is %d bytes, unix sockets allow %d; set admin.socket to a shorter path", path, len(path), maxSocketPath)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	// Bind inside a private directory, fix the mode, then rename into
	// place: the socket is never reachable with the umask's looser mode,
	// and changing the process-wide umask would race other goroutines.
	tmpDir, err := os.MkdirTemp(dir, ".ms")
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// The file moves; the listener must not unlink the old name on Close.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &socketListener{UnixListener: ln, path: path, fi: fi}, nil
}

// clearStale removes a socket (or a symlink to one) at path that nothing
// answers on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode()&(fs.ModeSocket|fs.ModeSymlink) == 0 {
		return fmt.Errorf("control socket %s: exists and is not a socket; refusing to replace it", path)
	}
	switch alive, err := probe(path); {
	case alive:
		return fmt.Errorf("control socket %s: %w", path, ErrSocketInUse)
	case err != nil:
		return fmt.Errorf("control socket %s: cannot tell whether another daemon uses it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket: remove stale socket: %w", err)
	}
	return nil
}

// probe connects to path: alive if something accepts, not alive (and no
// error) if the socket is stale or a dangling link, an error if unsure.
func probe(path string) (alive bool, err error) {
	conn, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		conn.Close()
		return true, nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	return false, err
}

// socketListener removes its socket file on Close, but only if the file is
// still the one it created.
type socketListener struct {
	*net.UnixListener
	path string
	fi   fs.FileInfo
	once stdsync.Once
	err  error
}

func (l *socketListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return l.err
}

// Symlink makes link point at the socket target, replacing a stale socket or
// link there (never a regular file, never a live socket), and returns a
// function that removes the link if it is still the one made here.
func Symlink(target, link string) (remove func(), err error) {
	if dest, err := os.Readlink(link); err == nil && dest == target {
		// Left by an earlier run; target is this daemon's socket now, so
		// probing through the link would find it alive.
		os.Remove(link)
	} else if err := clearStale(link); err != nil {
		return nil, err
	}
	if err := os.Symlink(target, link); err != nil {
		return nil, fmt.Errorf("control socket link: %w", err)
	}
	return func() {
		if dest, err := os.Readlink(link); err == nil && dest == target {
			os.Remove(link)
		}
	}, nil
}
