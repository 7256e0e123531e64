package matcher

import (
	"context"
	"errors"

	"github.com/mailsync/mailsync/sync/sink"
)

// Multi is a Directory over several: each look-up asks all of them and
// returns every record found, in the order of the directories (a CRM's
// own records first, then a file's, as the daemon builds it), without
// duplicates by kind and id.
type Multi []Directory

var _ Directory = Multi(nil)

// LookupEmails implements Directory; any directory's error fails the call.
func (m Multi) LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error) {
	return m.lookup(ctx, emails, Directory.LookupEmails)
}

// LookupDomains implements Directory, as LookupEmails.
func (m Multi) LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error) {
	return m.lookup(ctx, domains, Directory.LookupDomains)
}

func (m Multi) lookup(ctx context.Context, keys []string,
	fn func(Directory, context.Context, []string) (map[string][]sink.Record, error)) (map[string][]sink.Record, error) {
	if len(m) == 1 {
		return fn(m[0], ctx, keys)
	}
	out := map[string][]sink.Record{}
	var errs []error
	for _, d := range m {
		got, err := fn(d, ctx, keys)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for k, recs := range got {
			for _, r := range recs {
				if !hasRecord(out[k], r) {
					out[k] = append(out[k], r)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func hasRecord(rs []sink.Record, r sink.Record) bool {
	for _, have := range rs {
		if have.Kind == r.Kind && have.ID == r.ID {
			return true
		}
	}
	return false
}
