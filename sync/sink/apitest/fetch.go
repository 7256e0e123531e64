// Package apitest holds vendors' OpenAPI documents to fake CRM servers
// against: Fetch gets a spec from its npm package into a cache outside the
// repository (pinned version, verified integrity), Load normalises and
// parses it, and Validate wraps a fake's handler so that every request it
// receives and every response it sends is checked against the spec. Any
// violation, a request to a path the spec does not have included, fails the
// test.
//
// npm must be on PATH the first time a spec is fetched: a missing npm is a
// test failure, never a skip, because a fake nobody checks proves nothing.
package apitest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Package names an OpenAPI document shipped in an npm package.
type Package struct {
	Name    string // "@opensdks/sdk-pipedrive"
	Version string // exact, never a range
	// Integrity is the tarball's Subresource Integrity string as the
	// registry reports it (npm view NAME@VERSION dist.integrity).
	Integrity string
	// File is the document's path inside the tarball.
	File string
}

// CacheEnv names the environment variable that overrides the cache
// directory (default: os.UserCacheDir()/mailsync/specs).
const CacheEnv = "MAILSYNC_SPEC_CACHE"

// fetchTimeout bounds one npm pack.
const fetchTimeout = 3 * time.Minute

// CacheDir returns where fetched tarballs are kept.
func CacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set %s): %w", CacheEnv, err)
	}
	return filepath.Join(d, "mailsync", "specs"), nil
}

// tarballName is npm pack's file name for a package: "@scope/name" becomes
// "scope-name-VERSION.tgz".
func (p Package) tarballName() string {
	n := strings.ReplaceAll(strings.TrimPrefix(p.Name, "@"), "/", "-")
	return n + "-" + p.Version + ".tgz"
}

// Fetch returns the document's bytes, from the cache or, when the cache
// lacks the tarball (or holds one that fails the integrity check), from
// the npm registry through npm pack.
func Fetch(ctx context.Context, p Package) ([]byte, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, p.tarballName())
	tgz, err := os.ReadFile(path)
	if err != nil || verify(tgz, p.Integrity) != nil {
		if tgz, err = pack(ctx, p, dir); err != nil {
			return nil, err
		}
	}
	if err := verify(tgz, p.Integrity); err != nil {
		return nil, fmt.Errorf("%s@%s: %w", p.Name, p.Version, err)
	}
	doc, err := extract(tgz, p.File)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", p.Name, p.Version, err)
	}
	return doc, nil
}

// pack runs npm pack into a private directory and moves the tarball into
// the cache with a rename, so concurrent test processes never read half a
// file.
func pack(ctx context.Context, p Package, dir string) ([]byte, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return nil, fmt.Errorf("fetch %s@%s: npm is not installed (apt-get install npm); the spec-validated fakes need it: %w", p.Name, p.Version, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, "pack-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", p.Name+"@"+p.Version, "--pack-destination", tmp, "--silent")
	cmd.Dir = tmp // npm must not look at a package.json of the caller
	// Its own cache next to ours: a shared ~/.npm may belong to another user.
	cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(dir, "npm-cache"), "npm_config_update_notifier=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("npm pack %s@%s: %w: %s", p.Name, p.Version, err, strings.TrimSpace(string(out)))
	}
	got := filepath.Join(tmp, p.tarballName())
	tgz, err := os.ReadFile(got)
	if err != nil {
		return nil, fmt.Errorf("npm pack %s@%s: %w", p.Name, p.Version, err)
	}
	if err := verify(tgz, p.Integrity); err != nil {
		return nil, fmt.Errorf("npm pack %s@%s: %w", p.Name, p.Version, err)
	}
	if err := os.Rename(got, filepath.Join(dir, p.tarballName())); err != nil {
		return nil, err
	}
	return tgz, nil
}

// verify checks tgz against an SRI string "sha512-<base64>".
func verify(tgz []byte, integrity string) error {
	want, ok := strings.CutPrefix(integrity, "sha512-")
	if !ok {
		return fmt.Errorf("integrity %q is not sha512", integrity)
	}
	sum := sha512.Sum512(tgz)
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("tarball integrity is sha512-%s, want %s", got, integrity)
	}
	return nil
}

// maxDoc bounds the extracted document (Salesforce's is 19 MB).
const maxDoc = 64 << 20

func extract(tgz []byte, name string) ([]byte, error) {
	zr, err := gzip.NewReader(strings.NewReader(string(tgz)))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("tarball has no %s", name)
		}
		if err != nil {
			return nil, err
		}
		if h.Name != name {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxDoc+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxDoc {
			return nil, fmt.Errorf("%s is larger than %d bytes", name, maxDoc)
		}
		return b, nil
	}
}
