-- Version 5: editors' cosignatures of the log's checkpoints (docs/log.md,
-- "Cosignatures"; C2SP tlog-cosignature). Package server verifies every
-- row before it is stored; storage knows nothing of the formats. A
-- cosignature line carries the second its editor signed it (the
-- tlog-cosignature/v1 timestamp): the one time finer than a day this store
-- holds, about an editor, never a source, and public at GET /cosigned.

-- The checkpoint of each cosigned size, with the log's signature line: a
-- signed note exactly as the log key signed it.
CREATE TABLE cosigned_checkpoints (
	size   INTEGER PRIMARY KEY CHECK (size >= 1),
	signed BLOB    NOT NULL CHECK (length(signed) BETWEEN 1 AND 4096)
) STRICT;

-- One cosignature per size and editor: the latest one received.
CREATE TABLE cosignatures (
	size   INTEGER NOT NULL REFERENCES cosigned_checkpoints (size),
	-- editor is the label of the editor whose session sent it.
	editor TEXT    NOT NULL CHECK (length(editor) BETWEEN 1 AND 32),
	-- name is the cosigning key's name (crypto.CosignName(editor)), by
	-- which GET /cosigned/<size> sorts the lines.
	name   TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
	-- line is the signature line, "— <name> <base64>\n".
	line   BLOB    NOT NULL CHECK (length(line) BETWEEN 1 AND 256),
	PRIMARY KEY (size, editor)
) STRICT, WITHOUT ROWID;
