package odoo

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailsync/mailsync/sync/sink"
)

// LinkSent implements outbound.SentLinker: mail Odoo sends through the SMTP
// front carries the Message-ID of the mail.message that produced it, so the
// records it belongs to are that message's record, found in one search.
// Its ledger entry then links it, and the Sent copy is never logged again.
func (s *Sink) LinkSent(ctx context.Context, account, messageID string) ([]sink.Record, error) {
	mid := "<" + strings.Trim(strings.TrimSpace(messageID), "<>") + ">"
	var rows []loggedRow
	if err := s.rpc.execute(ctx, modelMessage, "search_read",
		[]any{[]any{[]any{"message_id", "=", mid}, []any{"model", "in", []string{modelPartner, modelLead}}}},
		map[string]any{"fields": []string{"model", "res_id"}}, &rows); err != nil {
		return nil, fmt.Errorf("account %s: find %s in Odoo: %w", account, mid, err)
	}
	var out []sink.Record
	for _, r := range rows {
		kind := sink.KindContact
		if string(r.Model) == modelLead {
			kind = sink.KindDeal
		}
		out = append(out, sink.Record{Kind: kind, ID: id(r.ResID), Via: "odoo mail.message by Message-ID"})
	}
	return out, nil
}
