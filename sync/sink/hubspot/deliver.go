package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// retractSuffix ends the key of a retract event (the message's key plus
// it, see the worker's flags handling).
const retractSuffix = ":retract"

// Deliver logs each EventMessage as one email engagement, batched: per
// 100 keys one search for engagements already carrying the keys (a
// redelivery, or a lost state file), then one batch create of the rest. A
// retract archives the message's engagement; other events change nothing
// in HubSpot. Results are in the order of ms; a key repeated in ms is
// handled once. After a transient failure the batch's remaining messages
// get the same error without further calls.
func (c *Client) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	res := make([]sink.Result, len(ms))
	if err := c.open(); err != nil {
		for i := range res {
			res[i].Err = err
		}
		return res
	}
	where := map[string][]int{}
	var msgs, retracts []string
	byKey := map[string]*sink.Message{}
	for i, m := range ms {
		switch {
		case m == nil || m.Key == "":
			res[i].Err = sink.Permanent(errors.New("hubspot: message without a key"))
			continue
		case m.Event == sink.EventMessage || m.Event == "":
			if _, dup := byKey[m.Key]; !dup {
				msgs = append(msgs, m.Key)
			}
		case m.Event == sink.EventRetract:
			if _, dup := byKey[m.Key]; !dup {
				retracts = append(retracts, m.Key)
			}
		default:
			continue // flags, expunges and extra copies: nothing to change in HubSpot
		}
		byKey[m.Key] = m
		where[m.Key] = append(where[m.Key], i)
	}
	set := func(key string, r sink.Result) {
		for _, i := range where[key] {
			res[i] = r
		}
	}
	var stop error
	for chunk := range slices.Chunk(msgs, maxBatch) {
		if stop == nil {
			stop = c.deliverChunk(ctx, chunk, byKey, set)
		} else {
			for _, k := range chunk {
				set(k, sink.Result{Err: stop})
			}
		}
	}
	for chunk := range slices.Chunk(retracts, maxBatch) {
		if stop == nil {
			stop = c.retractChunk(ctx, chunk, set)
		} else {
			for _, k := range chunk {
				set(k, sink.Result{Err: stop})
			}
		}
	}
	return res
}

// deliverChunk delivers up to maxBatch distinct keys and sets their
// results. It returns the transient error that should stop the batch.
func (c *Client) deliverChunk(ctx context.Context, keys []string, byKey map[string]*sink.Message, set func(string, sink.Result)) error {
	fail := func(keys []string, err error) error {
		for _, k := range keys {
			set(k, sink.Result{Err: err})
		}
		if sink.IsPermanent(err) {
			return nil
		}
		return fmt.Errorf("not sent after an earlier failure in the batch: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(keys, fmt.Errorf("hubspot: %w", err))
	}
	unlock, err := c.locks.lock(ctx, keys)
	if err != nil {
		return fail(keys, fmt.Errorf("hubspot: %w", err))
	}
	defer unlock()

	inputs := map[string]emailInput{}
	linked := map[string][]sink.Record{}
	for _, k := range keys {
		inputs[k], linked[k] = c.emailFor(byKey[k])
	}
	done := func(k, id string) {
		c.known.put(k, id)
		set(k, sink.Result{Receipt: sink.Receipt{Activity: id, Linked: linked[k]}})
	}
	var unknown []string
	for _, k := range keys {
		if id, ok := c.known.get(k); ok {
			done(k, id)
		} else {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	existing, err := c.findByKeys(ctx, unknown)
	if err != nil {
		return fail(unknown, err)
	}
	var create []string
	for _, k := range unknown {
		if id, ok := existing[k]; ok {
			done(k, id)
		} else {
			create = append(create, k)
		}
	}
	if len(create) > 0 {
		if d := c.settle.wait(); d > 0 {
			return fail(create, &sink.RetryAfterError{After: d,
				Err: fmt.Errorf("hubspot: %d emails not found by the search; waiting %s for HubSpot's search index to show emails created before the restart", len(create), d.Round(time.Second))})
		}
		if err := c.settle.mark(); err != nil {
			return fail(create, err)
		}
	}
	created, err := c.create(ctx, create, inputs)
	var perr *perKeyError
	if errors.As(err, &perr) {
		for k, e := range perr.errs {
			set(k, sink.Result{Err: e})
		}
		err = nil
	}
	for k, id := range created {
		done(k, id)
	}
	if err != nil {
		var left []string
		for _, k := range create {
			if _, ok := created[k]; !ok {
				left = append(left, k)
			}
		}
		return fail(left, err)
	}
	return nil
}

// findByKeys returns the engagement id of every key already logged, in
// one search (keys are at most maxIn).
func (c *Client) findByKeys(ctx context.Context, keys []string) (map[string]string, error) {
	objs, err := c.searchIn(ctx, "emails", c.cfg.KeyProperty, keys, []string{c.cfg.KeyProperty})
	if err != nil {
		return nil, fmt.Errorf("search %d logged emails: %w", len(keys), err)
	}
	out := make(map[string]string, len(objs))
	for _, o := range objs {
		// The search is case-insensitive; keys are lower-case hex anyway.
		if k := o.prop(c.cfg.KeyProperty); slices.Contains(keys, k) {
			if _, dup := out[k]; !dup {
				out[k] = o.ID
			}
		}
	}
	return out, nil
}

// perKeyError carries the permanent refusals of single inputs.
type perKeyError struct{ errs map[string]error }

func (e *perKeyError) Error() string { return fmt.Sprintf("%d inputs refused", len(e.errs)) }

// create creates the engagements of keys in one batch call. When HubSpot
// refuses the batch as a whole (400: one input is invalid, say an
// association to a deleted record), each input is sent alone so that only
// the bad one is dead-lettered.
func (c *Client) create(ctx context.Context, keys []string, inputs map[string]emailInput) (map[string]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	created, err := c.createBatch(ctx, keys, inputs)
	if err == nil || !sink.IsPermanent(err) {
		return created, err
	}
	if len(keys) == 1 {
		return nil, &perKeyError{errs: map[string]error{keys[0]: fmt.Errorf("log message %s: %w", keys[0], err)}}
	}
	c.log.Warn("HubSpot refused a batch of emails; sending them one by one to find the refused one", "messages", len(keys), "error", err)
	out := map[string]string{}
	perr := &perKeyError{errs: map[string]error{}}
	for _, k := range keys {
		got, err := c.createBatch(ctx, []string{k}, inputs)
		switch {
		case err == nil:
			out[k] = got[k]
		case sink.IsPermanent(err):
			perr.errs[k] = fmt.Errorf("log message %s: %w", k, err)
		default:
			return out, err
		}
	}
	if len(perr.errs) > 0 {
		return out, perr
	}
	return out, nil
}

func (c *Client) createBatch(ctx context.Context, keys []string, inputs map[string]emailInput) (map[string]string, error) {
	in := struct {
		Inputs []emailInput `json:"inputs"`
	}{}
	for _, k := range keys {
		in.Inputs = append(in.Inputs, inputs[k])
	}
	var res page
	status, err := c.call(ctx, "create_emails", http.MethodPost, "/crm/v3/objects/emails/batch/create", nil, in, &res)
	if err != nil {
		return nil, err
	}
	// Batch results come in no promised order: match them by key.
	out := make(map[string]string, len(res.Results))
	for _, o := range res.Results {
		if k := o.prop(c.cfg.KeyProperty); k != "" {
			out[k] = o.ID
		}
	}
	if len(out) < len(keys) {
		// 207: some inputs failed. They are retried; the search before
		// the next create finds any that did land.
		return out, fmt.Errorf("hubspot create_emails: %d of %d emails not created (status %d)", len(keys)-len(out), len(keys), status)
	}
	return out, nil
}

// retractChunk archives the engagements of retracted messages.
func (c *Client) retractChunk(ctx context.Context, keys []string, set func(string, sink.Result)) error {
	base := make([]string, len(keys))
	for i, k := range keys {
		base[i] = strings.TrimSuffix(k, retractSuffix)
	}
	unlock, err := c.locks.lock(ctx, base)
	if err != nil {
		for _, k := range keys {
			set(k, sink.Result{Err: err})
		}
		return err
	}
	defer unlock()
	found, err := c.findByKeys(ctx, base)
	if err != nil {
		for _, k := range keys {
			set(k, sink.Result{Err: err})
		}
		return err
	}
	in := struct {
		Inputs []idInput `json:"inputs"`
	}{}
	for _, b := range base {
		if id, ok := found[b]; ok {
			in.Inputs = append(in.Inputs, idInput{ID: id})
		} else if id, ok := c.known.get(b); ok {
			in.Inputs = append(in.Inputs, idInput{ID: id})
		}
	}
	if len(in.Inputs) > 0 {
		if _, err := c.call(ctx, "archive_emails", http.MethodPost, "/crm/v3/objects/emails/batch/archive", nil, in, nil); err != nil {
			for _, k := range keys {
				set(k, sink.Result{Err: err})
			}
			if sink.IsPermanent(err) {
				return nil
			}
			return err
		}
	}
	for i, k := range keys {
		c.known.drop(base[i])
		set(k, sink.Result{Receipt: sink.Receipt{Activity: found[base[i]]}})
	}
	return nil
}
