package odoo

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailsync/mailsync/sync/sink"
)

// retract removes the mail.message(s) a message was logged as: the user
// marked it private. They are found by Message-ID, so a retract after a lost
// state file still finds them; a message never logged is done.
func (s *Sink) retract(ctx context.Context, m *Message) sink.Result {
	base := strings.TrimSuffix(m.Key, ":retract")
	mid := messageID(&Message{Key: base, MessageID: m.MessageID})
	var ids []int
	if err := s.rpc.execute(ctx, modelMessage, "search", []any{[]any{[]any{"message_id", "=", mid}, []any{"model", "in", []string{modelPartner, modelLead}}}}, nil, &ids); err != nil {
		return sink.Result{Err: s.classify(fmt.Errorf("message %s: find to retract: %w", base, err))}
	}
	if len(ids) > 0 {
		if err := s.rpc.execute(ctx, modelMessage, "unlink", []any{ids}, nil, nil); err != nil {
			return sink.Result{Err: s.classify(fmt.Errorf("message %s: retract: %w", base, err))}
		}
	}
	if err := s.indexRemove([]string{base}); err != nil {
		s.log.Warn("cannot update the unlink index", "key", base, "err", err)
	}
	return sink.Result{}
}
