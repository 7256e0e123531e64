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
	// decodingPath is a decode hook's failure: "error decoding 'k': reason".
	decodingPath = regexp.MustCompile(`^error decoding '([^']*)': (.+)$`)
)

// Error is a config file that cannot be used: every problem found, each
// naming its key path.
type Error struct {
	Path     string // the file; empty for Parse
	Problems []error
}

// Error says "config FILE: problem", or with several problems one per
// line, indented under a count.
func (e *Error) Error() string {
	prefix := "config"
	if e.Path != "" {
		prefix += " " + e.Path
	}
	if len(e.Problems) == 1 {
		return prefix + ": " + e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", prefix, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error { return e.Problems }

// newError flattens err (one error, or errors.Join of several) into an
// *Error.
func newError(err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	e := &Error{}
	var flatten func(error)
	flatten = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, p := range j.Unwrap() {
				flatten(p)
			}
			return
		}
		e.Problems = append(e.Problems, err)
	}
	flatten(err)
	return e
}

// yamlLine finds the "line N: reason" in a YAML parser error, which reaches
// us wrapped in viper's and the parser's own prefixes.
var yamlLine = regexp.MustCompile(`line \d+: .*$`)

func translateYAMLError(err error) error {
	if m := yamlLine.FindString(err.Error()); m != "" {
		return errors.New(m)
	}
	return errors.New("not valid YAML: " + strings.TrimPrefix(err.Error(), "While parsing config: yaml: "))
}

// decodeValue rewrites a failed conversion into what the key wants, with
// the value the file holds; raw looks that value up by key path.
func decodeValue(path, reason string, raw func(string) any) string {
	v := raw(path)
	switch {
	case strings.Contains(reason, "time: "):
		return fmt.Sprintf("want a duration such as 30s, 5m or 1h30m (units ms, s, m, h), not %q", fmt.Sprint(v))
	case strings.Contains(reason, "as 'int'"), strings.Contains(reason, "as 'uint'"), strings.Contains(reason, "ParseInt"):
		return fmt.Sprintf("want a whole number, not %q", fmt.Sprint(v))
	case strings.Contains(reason, "as 'bool'"), strings.Contains(reason, "ParseBool"):
		return fmt.Sprintf("want true or false, not %q", fmt.Sprint(v))
	case strings.Contains(reason, "strconv."):
		return fmt.Sprintf("not a valid value: %q", fmt.Sprint(v))
	}
	return reason
}

// translateDecodeError rewrites mapstructure's messages into the form every
// other config error uses: "accounts[sales].foo: unknown key".
func translateDecodeError(err error, ids []string, raw func(string) any) error {
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
			errs = append(errs, fmt.Errorf("%s: %s", namePath(m[1], ids), decodeValue(m[1], m[2], raw)))
			continue
		}
		if m := decodingPath.FindStringSubmatch(line); m != nil {
			errs = append(errs, fmt.Errorf("%s: %s", namePath(m[1], ids), decodeValue(m[1], m[2], raw)))
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
