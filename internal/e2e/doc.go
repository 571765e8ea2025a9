// Package e2e holds only end-to-end tests; it has no code of its own.
//
// Its tests build the three real binaries (fieldtipd and newsdesk with
// SQLite, fieldtip with CGO_ENABLED=0, as a phone build would) once, and run
// them as separate processes on loopback: the README's walk-through and the
// refusals a source and an editor must see (testdata/*.txt, testscript),
// that no plaintext marker reaches any file or log line of the server, that
// a server killed with SIGKILL keeps every tip it acknowledged and no
// partial one, and that SIGTERM lets commits in flight finish and answer.
package e2e
