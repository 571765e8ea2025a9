-- Version 3: the editorial log (docs/log.md): its entries, the tlog stored
-- hashes of its Merkle tree, the latest signed checkpoint, and for each
-- editorial event its id (never logged twice) and its encrypted body.
-- Entries and bodies are public or ciphertext; nothing here is a time, an
-- address or a user agent.

CREATE TABLE log_entries (
	-- idx is the entry's index in the log, from 0, without gaps.
	idx  INTEGER PRIMARY KEY CHECK (idx >= 0),
	-- data is the exact entry: the tlog-tiles limit is 65,535 bytes.
	data BLOB    NOT NULL CHECK (length(data) BETWEEN 1 AND 65535)
) STRICT;

CREATE TABLE log_hashes (
	-- idx is a tlog stored-hash index (tlog.StoredHashIndex).
	idx  INTEGER PRIMARY KEY CHECK (idx >= 0),
	hash BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

-- One row: the checkpoint signed over the whole log in the same
-- transaction as its last entries.
CREATE TABLE log_checkpoint (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	size   INTEGER NOT NULL CHECK (size >= 0),
	signed BLOB    NOT NULL
) STRICT;

CREATE TABLE event_ids (
	id  BLOB    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
	idx INTEGER NOT NULL UNIQUE REFERENCES log_entries (idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE event_bodies (
	idx        INTEGER PRIMARY KEY REFERENCES log_entries (idx),
	-- ciphertext is the body's age file, opaque to the server.
	ciphertext BLOB    NOT NULL CHECK (length(ciphertext) >= 1)
) STRICT;
