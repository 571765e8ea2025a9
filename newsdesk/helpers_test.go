package newsdesk

import (
	"testing"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
)

// The harness lives in internal/testkit/fieldtiptest; these names keep this
// package's tests short.
type testNewsroom struct {
	key    *crypto.SignerKey
	editor *crypto.EditorKey
}

func newTestNewsroom(t testing.TB, classic bool) *testNewsroom {
	t.Helper()
	n := fieldtiptest.NewNewsroom(t, classic)
	return &testNewsroom{key: n.Key, editor: n.Editor}
}

func (n *testNewsroom) bundle(t testing.TB, version int64, logKey string) []byte {
	t.Helper()
	return n.shared().Bundle(t, version, logKey)
}

func (n *testNewsroom) shared() *fieldtiptest.Newsroom {
	return &fieldtiptest.Newsroom{Key: n.key, Editor: n.editor}
}

type (
	testServer    = fieldtiptest.Server
	serverOptions = fieldtiptest.ServerOptions
)

var startServer = fieldtiptest.StartServer
