package newsdesk

import (
	"context"
	"net/http"

	"fieldtip/protocol"
)

// PutReply stores a sealed reply on the server under the source's mailbox
// id (docs/replies.md). It returns nil once the server holds it durably;
// a refusal (the mailbox full, a reply id stored already) is a
// *protocol.Error.
func (r *Remote) PutReply(ctx context.Context, mailbox protocol.MailboxID, id protocol.ReplyID, sealed []byte) error {
	_, err := r.raw(ctx, http.MethodPost, protocol.ReplyPath(mailbox, id), sealed, 0)
	return err
}
