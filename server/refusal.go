package server

// Refusals: how the server tells a client it will not do what it asked
// (DESIGN.md §5: a typed error, stable code and curated text, then a clean
// close; STYLE.md, "Map errors to wire codes in one function"). Every
// refusal reaches the wire through refusal, which gives its code and text,
// its HTTP status and its WebSocket close code. A handler either returns a
// *protocol.Error it chose, or hands refusal (through Server.failed) the
// error it got: storage's typed errors map to their codes here, and
// anything else is "internal error", logged, its text never sent.

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"fieldtip/protocol"
	"fieldtip/storage"

	"github.com/gorilla/websocket"
)

// Refusals any handler may give.
var (
	errBusy     = protocol.Errorf(protocol.CodeBusy, "the server is overloaded; try again later")
	errStopping = protocol.Errorf(protocol.CodeShuttingDown, "the server is stopping")
	errInternal = protocol.Errorf(protocol.CodeInternal, "internal error")
	// errFull: the disk is full (storage.ErrFull); nothing was stored.
	errFull = protocol.Errorf(protocol.CodeBusy, "the server has no room to store this now; try again later")
)

// Refusals of requests no endpoint takes.
var (
	errNoRoute       = protocol.Errorf(protocol.CodeNotFound, "no such endpoint, or not with this method")
	errNotUpgrade    = protocol.Errorf(protocol.CodeMalformed, "not a WebSocket upgrade this server takes")
	errUpgradeOrigin = protocol.Errorf(protocol.CodeUnauthorized, "WebSocket upgrade from another origin")
)

// serveNoRoute answers what no endpoint takes with a typed not_found:
// every refusal is typed (DESIGN.md §5), a mistyped path too.
func serveNoRoute(w http.ResponseWriter, r *http.Request) { writeRefusal(w, errNoRoute) }

// refused is a refusal as it goes on the wire.
type refused struct {
	// err is the wire error: its stable code and curated text.
	err *protocol.Error
	// status is its HTTP status.
	status int
	// closeCode is the WebSocket close code that follows it (RFC 6455
	// §7.4.1).
	closeCode int
}

// statusExceptions are the refusals whose HTTP status is not their code's
// (codeStatus): 401, not 403, tells an editor to log in (again), a login
// note that does not parse is a bad request, and a bundle for another
// server's log conflicts with this one.
var statusExceptions = map[*protocol.Error]int{
	errBadLogin:     http.StatusBadRequest,
	errLogInFirst:   http.StatusUnauthorized,
	errSessionLost:  http.StatusUnauthorized,
	errBundleLogKey: http.StatusConflict,
}

// refusal maps err to what the client is told. A *protocol.Error (or an
// error wrapping one) is sent as it is; storage.ErrBusy is busy and
// storage.ErrClosed shutting_down; anything else is internal, with a fixed
// text.
func refusal(err error) refused {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, storage.ErrBusy):
		pe = errBusy
	case errors.Is(err, storage.ErrFull):
		pe = errFull
	case errors.Is(err, storage.ErrClosed):
		pe = errStopping
	default:
		pe = errInternal
	}
	status, ok := statusExceptions[pe]
	if !ok {
		status = codeStatus(pe.Code)
	}
	return refused{err: pe, status: status, closeCode: closeCode(pe.Code)}
}

// failed returns the refusal of op's failure err, and logs err if it is
// the server's own fault (an internal refusal that no handler chose):
// busy and stopping are the load's, not faults, and a *protocol.Error was
// logged, if need be, by whoever chose it. A full disk is the operator's
// to fix: it is logged at most once a minute.
func (s *Server) failed(op string, err error) *protocol.Error {
	r := refusal(err)
	var pe *protocol.Error
	switch {
	case r.err == errFull:
		now := time.Now().UnixNano()
		if last := s.fullLogged.Load(); now-last >= int64(time.Minute) && s.fullLogged.CompareAndSwap(last, now) {
			s.log.Error("no room to write: refusing what must be stored until there is (free disk space, or raise the file size limit)", attrErr, err)
		}
	case r.err.Code == protocol.CodeInternal && !errors.As(err, &pe):
		s.log.Error(op, attrErr, err)
	}
	return r.err
}

// codeStatus is the HTTP status of each code.
func codeStatus(c protocol.Code) int {
	switch c {
	case protocol.CodeMalformed, protocol.CodeBadHash, protocol.CodeUnsupportedVersion, protocol.CodeUnexpected,
		protocol.CodeBadFrameSize, protocol.CodeBadChecksum, protocol.CodeBadCiphertext, protocol.CodeBadPoW:
		return http.StatusBadRequest
	case protocol.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeUnauthorized:
		return http.StatusForbidden
	case protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeStaleBundle, protocol.CodeReplayed, protocol.CodeConflict, protocol.CodeStalePoW,
		protocol.CodePolicyNotMet, protocol.CodePending:
		return http.StatusConflict
	case protocol.CodeTrailRefused:
		return http.StatusUnprocessableEntity
	case protocol.CodeExpired:
		return http.StatusGone
	case protocol.CodeTooManyUploads:
		return http.StatusTooManyRequests
	case protocol.CodeTimeout:
		return http.StatusRequestTimeout
	case protocol.CodeBusy, protocol.CodeShuttingDown:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// closeCode is the WebSocket close code of each code: the peer may retry
// busy and shutting_down later (1013), a message too large is 1009, a
// failure of the server's 1011, and any other refusal a policy violation
// (1008).
func closeCode(c protocol.Code) int {
	switch c {
	case protocol.CodeTooLarge:
		return websocket.CloseMessageTooBig
	case protocol.CodeBusy, protocol.CodeShuttingDown:
		return websocket.CloseTryAgainLater
	case protocol.CodeInternal:
		return websocket.CloseInternalServerErr
	}
	return websocket.ClosePolicyViolation
}

// writeRefusal answers a plain HTTP request with err's refusal.
func writeRefusal(w http.ResponseWriter, err error) {
	r := refusal(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(r.status)
	w.Write(append(protocol.Marshal(r.err), '\n'))
}

// clipMessage returns e with its text cut to protocol.MaxMessageLength
// bytes of valid UTF-8: a client refuses a longer error message as
// malformed, and a parser's text can quote the client's input at any length
// (encoding/json's "cannot unmarshal number 1111…" carries the whole
// number).
func clipMessage(e *protocol.Error) *protocol.Error {
	m := strings.ToValidUTF8(e.Message, "\uFFFD")
	if len(m) > protocol.MaxMessageLength {
		const ellipsis = "…"
		n := protocol.MaxMessageLength - len(ellipsis)
		for n > 0 && !utf8.RuneStart(m[n]) {
			n--
		}
		m = m[:n] + ellipsis
	}
	c := *e
	c.Message = m
	return &c
}

// asProtocolError returns the *protocol.Error a parser refused a message
// with, or malformed.
func asProtocolError(err error) *protocol.Error {
	var e *protocol.Error
	if errors.As(err, &e) {
		return e
	}
	return protocol.Errorf(protocol.CodeMalformed, "malformed message")
}
