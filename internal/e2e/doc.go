// Package e2e holds only end-to-end tests; it has no code of its own.
// One program's command line is tested in-process by its cmd/*/testdata
// scripts (internal/testkit/scripttest); the tests here are the walks
// across programs, and what needs separate processes to kill and restart.
//
// Its tests build the three real binaries (fieldtipd and newsdesk with
// SQLite, fieldtip with CGO_ENABLED=0, as a phone build would) once, and run
// them as separate processes on loopback: the README's walk-through and its
// "In the field" section, command for command, and the refusals a source and
// an editor must see (testdata/*.txt, testscript, with a real SOCKS5 proxy
// in the test process for --proxy); that no plaintext marker reaches any
// file or log line of the server, nor the source's outbox; that a server
// killed with SIGKILL keeps every tip it acknowledged and no partial one,
// and that SIGTERM lets commits in flight finish and answer; and, through a
// throttled internal/testkit/flakylink relay that counts the bytes it
// carries, that fieldtip send --budget stops with exit status 3 and the
// next send resumes from the server's offset, also after the server was
// killed mid upload and restarted, sending only what the server did not
// hold.
package e2e
