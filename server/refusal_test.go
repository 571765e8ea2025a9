package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"fieldtip/protocol"
	"fieldtip/storage"

	"github.com/gorilla/websocket"
)

// TestRefusal: every refusal's code, HTTP status and close code come from
// one table, and nothing but a chosen *protocol.Error reaches the wire
// with its own text.
func TestRefusal(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		want   *protocol.Error
		status int
		close  int
	}{
		{"busy store", storage.ErrBusy, errBusy, 503, websocket.CloseTryAgainLater},
		{"wrapped busy store", fmt.Errorf("append: %w", storage.ErrBusy), errBusy, 503, websocket.CloseTryAgainLater},
		{"closed store", storage.ErrClosed, errStopping, 503, websocket.CloseTryAgainLater},
		{"full store", fmt.Errorf("storage: commit: %w: %w", storage.ErrFull, errors.New("disk I/O error: file too large")), errFull, 503, websocket.CloseTryAgainLater},
		{"not found is a handler's to say", storage.ErrNotFound, errInternal, 500, websocket.CloseInternalServerErr},
		{"any other failure", errors.New("disk on fire: /var/secret"), errInternal, 500, websocket.CloseInternalServerErr},
		{"deadline", context.DeadlineExceeded, errInternal, 500, websocket.CloseInternalServerErr},
		{"chosen refusal", errEventMalformed, errEventMalformed, 400, websocket.ClosePolicyViolation},
		{"wrapped chosen refusal", fmt.Errorf("server: append: %w", errEventSigner), errEventSigner, 403, websocket.ClosePolicyViolation},
		{"too large", errEventTooLarge, errEventTooLarge, 413, websocket.CloseMessageTooBig},
		{"log in first", errLogInFirst, errLogInFirst, 401, websocket.ClosePolicyViolation},
		{"session lost", errSessionLost, errSessionLost, 401, websocket.ClosePolicyViolation},
		{"same code, not the exception", errNonce, errNonce, 403, websocket.ClosePolicyViolation},
		{"login note malformed", errBadLogin, errBadLogin, 400, websocket.ClosePolicyViolation},
		{"bundle of another log", errBundleLogKey, errBundleLogKey, 409, websocket.ClosePolicyViolation},
		{"replayed", errEventReplayed(12), nil, 409, websocket.ClosePolicyViolation},
		{"conflict", errEventNotPrefix(3), nil, 409, websocket.ClosePolicyViolation},
		{"expired upload", errUploadExpired, errUploadExpired, http.StatusGone, websocket.ClosePolicyViolation},
		{"commit outcome unknown", errCommitUnknown, errCommitUnknown, 500, websocket.CloseInternalServerErr},
		{"too many connections", errTooManyConns, errTooManyConns, 503, websocket.CloseTryAgainLater},
	} {
		r := refusal(tt.err)
		want := tt.want
		if want == nil {
			errors.As(tt.err, &want)
		}
		if r.err != want || r.status != tt.status || r.closeCode != tt.close {
			t.Errorf("refusal(%s) = %v, %d, %d; want %v, %d, %d", tt.name, r.err, r.status, r.closeCode, want, tt.status, tt.close)
		}
	}
}

// TestRefusalCodes: every code has a status a client can act on, and only
// internal is a 500.
func TestRefusalCodes(t *testing.T) {
	for _, c := range []protocol.Code{
		protocol.CodeMalformed, protocol.CodeUnsupportedVersion, protocol.CodeUnexpected, protocol.CodeTooLarge,
		protocol.CodeBadFrameSize, protocol.CodeConflict, protocol.CodeBadChecksum, protocol.CodeBadHash,
		protocol.CodeBadCiphertext, protocol.CodeStaleBundle, protocol.CodeBusy, protocol.CodeTooManyUploads,
		protocol.CodeShuttingDown, protocol.CodeTimeout, protocol.CodeUnauthorized, protocol.CodeNotFound,
		protocol.CodeBadPoW, protocol.CodeStalePoW, protocol.CodeReplayed, protocol.CodeExpired,
	} {
		if s := codeStatus(c); s == http.StatusInternalServerError || s < 400 {
			t.Errorf("codeStatus(%s) = %d, want a 4xx or 503", c, s)
		}
	}
	if s := codeStatus(protocol.CodeInternal); s != http.StatusInternalServerError {
		t.Errorf("codeStatus(internal) = %d, want 500", s)
	}
}
