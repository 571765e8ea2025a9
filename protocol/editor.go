package protocol

import (
	"bytes"
	"encoding/json"
	"io"
)

// The editors' endpoint is plain HTTPS with JSON bodies:
//
//	POST /editor/challenge            → Challenge
//	POST /editor/login   (login note) → Session
//	GET  /editor/tips?after=N&limit=M → TipList    (Authorization: Bearer <token>)
//	GET  /editor/tips/<tip id>        → ciphertext (Authorization: Bearer <token>)
//	GET  /bundle                      → the signed bundle in force
//	POST /bundle         (bundle)     → 204, or an error
//
// A refusal is an error message (see Error) with a 4xx or 5xx status.
const (
	PathChallenge = "/editor/challenge"
	PathLogin     = "/editor/login"
	PathTips      = "/editor/tips"
	PathBundle    = "/bundle"
	PathHealth    = "/healthz"
)

// Editor endpoint limits.
const (
	// MaxTipList caps the tips one list request returns.
	MaxTipList = 1000
	// MaxEditorResponse caps a JSON response an editor's client reads.
	MaxEditorResponse = 4 << 20
)

// Challenge is the server's login challenge: sign a fieldtip/login/v1 note
// over Origin, Nonce and Expires with the editor's signing key.
type Challenge struct {
	Origin  string `json:"origin"`
	Nonce   string `json:"nonce"`
	Expires string `json:"expires"`
}

// Session is the answer to an accepted login.
type Session struct {
	Token   string `json:"token"`
	Editor  string `json:"editor"`
	Expires string `json:"expires"`
}

// TipList is one page of tips in arrival order.
type TipList struct {
	Tips []TipInfo `json:"tips"`
}

// TipInfo describes one stored tip to an editor.
type TipInfo struct {
	Seq           int64  `json:"seq"`
	ID            string `json:"id"`
	Day           string `json:"day"`
	BundleVersion int64  `json:"bundle_version"`
	Length        int64  `json:"length"`
	SHA256        string `json:"sha256"`
	Receipt       string `json:"receipt"`
}

// DecodeJSON strictly decodes one JSON value of at most max bytes from r
// into v: unknown fields and trailing data are refused as CodeMalformed.
func DecodeJSON(r io.Reader, max int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return malformed("read: %v", err)
	}
	if int64(len(b)) > max {
		return malformed("response of more than %d bytes", max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("trailing data after the JSON value")
	}
	return nil
}
