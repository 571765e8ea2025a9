// Package newsdesk is the editors' side of fieldtip: newsroom and editor
// keys, key bundles, and one editor's session with the server: pulling
// tips as ciphertext, keeping a verified replica of the editorial log,
// replaying it into editorial state, writing events, witnessing the log,
// and auditing it with no key.
//
// It promises, to the editor:
//
//   - Plaintext never touches the disk unless the editor asks for an
//     attachment to be written (WriteAttachments, newsdesk read --out).
//     The cache holds ciphertext, signed receipts, the log's public
//     entries and encrypted event bodies, and a sealed index of what was
//     decrypted, encrypted under a key derived from the editor's key
//     (docs/newsdesk.md). TestSessionSealedIndex and the e2e editorial
//     script scan the cache for the plaintext.
//   - A tip is shown only after its ciphertext matched the hash in a
//     receipt signed by the bundle's log key (TestPull,
//     TestEntryOpenRefusesChangedFile).
//   - The log is used only once verified: every checkpoint against the
//     log key and, by a consistency proof, against the last one this
//     cache verified (a fork is a *ForkError holding both checkpoints),
//     every entry by audit.Verifier (the events' signatures of a prefix
//     an earlier run verified, by its tree in the sealed index, once),
//     every event body against its hash.
//     An event is reported logged only once a checkpoint extending the
//     one it was signed over includes it (logsync_test.go, events_test.go).
//   - Two editors who open the same events replay the same state
//     (docs/audit.md, "Replay"; TestEventsTwoEditors).
//   - Keys are written passphrase-protected (age scrypt) and never
//     replaced (keys_test.go); a file given as a key that is another file
//     fieldtip makes (a .pub file, a verifier key) is named for what it is
//     before any passphrase is asked (CheckKeyFile).
//   - AuditVerify needs no decryption key and holds the server to the same
//     rules from its own state, a replica laid out as the log's read
//     endpoints, from which a server can be rebuilt
//     (TestAuditVerifyTamperedEntry, TestRecoverFromReplica).
//
// # Sessions
//
// Every command, and the console, works through one Session, opened once
// per run with OpenSession:
//
//	s, err := newsdesk.OpenSession(ctx, newsdesk.SessionConfig{Cache: dir, Server: url, Key: key})
//	defer s.Close()                        // saves the sealed index
//	rep, err := s.Sync(ctx)                // bundle, tips, log, receipts trees, cosignature
//	err = s.Refresh(ctx)                   // the log only, before looking at State to write
//	st := s.State()                        // *audit.State replayed from the verified log
//	ed := s.Editorial()                    // events opened, unreadable, warnings
//	tips, err := s.Tips()                  // the inbox: a TipSummary a cached tip
//	tip, entry, err := s.OpenTip(id)       // one tip, decrypted in memory
//	i, err := s.Write(ctx, body)           // one event; cosigns its acknowledgement
//	i, err = s.Triage(ctx, id, ch)         // and Note, Delete, Handover: checked acts
//	r, err := s.Reply(ctx, id, text)       // answer the tip's source (docs/replies.md)
//	items, err := s.Thread(id)             // the tips and replies of the tip's source
//	r, err := s.Remote(ctx)                // the login, for other endpoints; s.Call renews it
//	b := s.Bundle()                        // the newest verified bundle
//	v := s.View()                          // the verified log (*LogView)
//
// A session holds one HTTP client, one login (renewed when it expires or
// the server ends it), the unlocked key, and the log and its replayed
// state in memory. OpenSession replays from the sealed index of the last
// run and decrypts only the events after it; Sync, Refresh and Write
// decrypt only the events that are new. Cosigning and the receipts-tree
// check are steps of Sync; a Write cosigns the checkpoint its
// acknowledgement proved, and brings the replica on disk up to it, so an
// offline inbox or log shows the event. The Cache methods of the same
// names (SyncLog, Triage, Note, Delete, Handover, WriteEvent, Pull) open
// a session for one act.
package newsdesk
