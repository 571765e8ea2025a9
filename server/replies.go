package server

// Replies to sources (docs/replies.md; docs/protocol.md, "Replies"):
// editors store sealed replies under a mailbox id; sources fetch a bucket
// of them on a connection that carries no upload, and delete what they
// read by signing with the mailbox key. The server holds ciphertext, the
// mailbox id and a day, and logs nothing of either side's ids.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"github.com/gorilla/websocket"
)

// Reply defaults (Config).
const (
	defaultMaxMailboxBytes = 64 << 10
	defaultMaxReplies      = 1 << 16
	defaultReplyExpiry     = 90 * 24 * time.Hour
)

// Refusals of the reply endpoints. The texts never echo an id.
var (
	errReplyPath        = protocol.Errorf(protocol.CodeMalformed, "want /editor/replies/<mailbox id>/<reply id>")
	errReplyTooLarge    = protocol.Errorf(protocol.CodeTooLarge, "a sealed reply is at most %d bytes", protocol.MaxReplySize)
	errReplyCiphertext  = protocol.Errorf(protocol.CodeBadCiphertext, "not a sealed reply: an age file to one reply recipient, a multiple of %d bytes", protocol.ReplyFrameSize)
	errReplyStored      = protocol.Errorf(protocol.CodeReplayed, "a reply with this id is stored already")
	errRepliesFull      = protocol.Errorf(protocol.CodeBusy, "the server holds as many replies as it may; try again later")
	errRepliesOnUpload  = protocol.Errorf(protocol.CodeUnexpected, "replies are fetched on a connection that carries no upload")
	errUploadOnReplies  = protocol.Errorf(protocol.CodeUnexpected, "uploads go on a connection that fetched no replies")
	errRepliesTwice     = protocol.Errorf(protocol.CodeUnexpected, "a connection asks for replies at most twice")
	errDeleteNotSent    = protocol.Errorf(protocol.CodeNotFound, "no reply with this id was sent on this connection")
	errDeleteNotMailbox = protocol.Errorf(protocol.CodeUnauthorized, "the key is not the reply's mailbox's, or the signature does not verify")
)

// servePutReply stores a reply an editor wrote: POST
// /editor/replies/<mailbox id>/<reply id>, the sealed reply as the body.
// It answers 204 once the reply is durably stored.
func (s *Server) servePutReply(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.editor(w, r); !ok {
		return
	}
	mailbox, err1 := protocol.ParseMailboxID(r.PathValue("mailbox"))
	id, err2 := protocol.ParseReplyID(r.PathValue("id"))
	if err1 != nil || err2 != nil {
		writeRefusal(w, errReplyPath)
		return
	}
	ct, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxReplySize))
	if err != nil {
		writeRefusal(w, errReplyTooLarge)
		return
	}
	if crypto.CheckReplyCiphertext(ct) != nil {
		writeRefusal(w, errReplyCiphertext)
		return
	}
	err = s.store.PutReply(r.Context(), &storage.Reply{ID: id, Mailbox: mailbox, Day: crypto.Day(s.now()), Ciphertext: ct},
		s.cfg.MaxMailboxBytes, int64(s.cfg.MaxReplies))
	var full *storage.MailboxFullError
	switch {
	case errors.As(err, &full):
		writeRefusal(w, protocol.Errorf(protocol.CodeTooLarge, "the mailbox holds %d bytes of unread replies, at most %d: the source has not read them yet", full.Held, full.Max))
		return
	case errors.Is(err, storage.ErrRepliesFull):
		writeRefusal(w, errRepliesFull)
		return
	case errors.Is(err, storage.ErrDuplicate):
		writeRefusal(w, errReplyStored)
		return
	case err != nil:
		writeRefusal(w, s.failed("store reply", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// replySession is what a source connection that fetched replies keeps:
// the replies it was sent, which are the only ones it may delete.
type replySession struct {
	asked int
	sent  map[protocol.ReplyID]protocol.MailboxID
}

// guardConnection keeps uploads and reply fetches on separate
// connections (docs/replies.md): a fetch on an upload's connection would
// tell the server that the tip and the mailbox are one source's.
func (ss *sourceSession) guardConnection(msg any) *protocol.Error {
	switch msg.(type) {
	case *protocol.Upload, *protocol.Resume, *protocol.Commit:
		if ss.replies != nil {
			return errUploadOnReplies
		}
		ss.carriedUpload = true
	case *protocol.RepliesRequest, *protocol.Delete:
		if ss.carriedUpload {
			return errRepliesOnUpload
		}
	}
	return nil
}

// fetchReplies answers a replies request: the server's suggested length
// and, if the request is at least that long, the bucket's replies.
func (ss *sourceSession) fetchReplies(m *protocol.RepliesRequest) *protocol.Error {
	if ss.replies == nil {
		ss.replies = &replySession{sent: map[protocol.ReplyID]protocol.MailboxID{}}
	}
	if ss.replies.asked++; ss.replies.asked > 2 {
		return errRepliesTwice
	}
	ctx := context.Background()
	stored, err := ss.s.store.CountReplies(ctx)
	if err != nil {
		return ss.s.failed("count replies", err)
	}
	suggest := protocol.SuggestBits(stored)
	if m.Bits < suggest {
		return ss.send(&protocol.Bucket{Bits: suggest, Count: 0})
	}
	bucket, err := ss.s.store.ReplyBucket(ctx, m.Bits, byte(m.Prefix), protocol.MaxBucketReplies)
	if err != nil {
		return ss.s.failed("read reply bucket", err)
	}
	if perr := ss.send(&protocol.Bucket{Bits: suggest, Count: len(bucket)}); perr != nil {
		return perr
	}
	buf := make([]byte, 0, protocol.ReplyFrameHeader+protocol.MaxReplySize)
	for _, r := range bucket {
		buf = protocol.AppendReplyFrame(buf[:0], &protocol.ReplyFrame{ID: r.ID, Ciphertext: r.Ciphertext})
		// writeMu as in send: no upload pipe writes on a reply
		// connection (guardConnection), but lastSent is read under it.
		ss.writeMu.Lock()
		ss.conn.SetWriteDeadline(time.Now().Add(ss.s.cfg.WriteTimeout))
		err := ss.conn.WriteMessage(websocket.BinaryMessage, buf)
		// The source's next message (its deletes) comes once the whole
		// bucket reached it: the read wait counts these bytes too.
		ss.lastSent += len(buf)
		ss.writeMu.Unlock()
		if err != nil {
			return errLinkGone
		}
		ss.replies.sent[r.ID] = r.Mailbox
	}
	return nil
}

// deleteReply deletes a reply this connection was sent, once the mailbox
// key and its signature check, and confirms.
func (ss *sourceSession) deleteReply(m *protocol.Delete) *protocol.Error {
	if ss.replies == nil {
		return errDeleteNotSent
	}
	mailbox, ok := ss.replies.sent[m.ReplyID]
	if !ok {
		return errDeleteNotSent
	}
	if crypto.CheckDelete(crypto.MailboxID(mailbox), m.MailboxKey[:], m.ReplyID, m.Sig[:]) != nil {
		return errDeleteNotMailbox
	}
	// The delete must not be abandoned because the source hung up: it
	// proved the mailbox, and its reply must go.
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommitTimeout)
	defer cancel()
	if _, err := ss.s.store.DeleteReplies(ctx, [][16]byte{m.ReplyID}); err != nil {
		return ss.s.failed("delete reply", err)
	}
	delete(ss.replies.sent, m.ReplyID)
	return ss.send(&protocol.Deleted{ReplyID: m.ReplyID})
}

// purgeReplies deletes replies unread past Config.ReplyExpiry.
func (s *Server) purgeReplies(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	before := crypto.Day(s.now().Add(-s.cfg.ReplyExpiry))
	n, err := s.store.DeleteRepliesBefore(ctx, before)
	if err != nil && ctx.Err() != nil {
		// Cut short by shutdown: the next start's purge does it.
		return
	}
	if err != nil {
		s.log.Error("delete expired replies", attrErr, err)
		return
	}
	if n > 0 {
		s.log.Info("deleted expired replies", attrCount, n)
	}
}
