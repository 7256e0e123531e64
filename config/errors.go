package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	invalidKeys = regexp.MustCompile(`^'([^']*)' has invalid keys: (.+)$`)
	quotedPath  = regexp.MustCompile(`^'([^']*)' (.+)$`)
	accountIdx  = regexp.MustCompile(`^accounts\[(\d+)\]`)
)

// translateDecodeError rewrites mapstructure's messages into the form every
// other config error uses: "accounts[sales].foo: unknown key".
func translateDecodeError(err error, ids []string) error {
	msg := err.Error()
	if i := strings.Index(msg, ":\n"); i >= 0 {
		msg = msg[i+2:]
	}
	var errs []error
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
		if line == "" {
			continue
		}
		if m := invalidKeys.FindStringSubmatch(line); m != nil {
			for _, k := range strings.Split(m[2], ",") {
				errs = append(errs, fmt.Errorf("%s: unknown key", joinPath(namePath(m[1], ids), strings.TrimSpace(k))))
			}
			continue
		}
		if m := quotedPath.FindStringSubmatch(line); m != nil {
			errs = append(errs, fmt.Errorf("%s: %s", namePath(m[1], ids), m[2]))
			continue
		}
		errs = append(errs, errors.New(line))
	}
	return errors.Join(errs...)
}

// namePath replaces an account's index with its id, which is what an admin
// searches the file for.
func namePath(p string, ids []string) string {
	return accountIdx.ReplaceAllStringFunc(p, func(s string) string {
		n, _ := strconv.Atoi(accountIdx.FindStringSubmatch(s)[1])
		if n < len(ids) && ids[n] != "" {
			return "accounts[" + ids[n] + "]"
		}
		return s
	})
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
