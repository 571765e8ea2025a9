-- Version 4: receipts trees (docs/audit.md, "Receipts tree") and the day
-- editors marked a tip rejected. Days only, no address, no finer time.

-- One row per period, from the first (docs/log.md) without gaps. A row is
-- written before its root entry is appended to the log (log_index NULL:
-- pending), and gets log_index once the entry is in the log: storage.log
-- appends in a transaction of its own, so the two cannot share one, and the
-- server resolves a pending row at its next purge (server/receipts.go).
-- The period key itself is never stored: only sealed to the editors.
CREATE TABLE receipts_periods (
	first_day  TEXT    PRIMARY KEY CHECK (length(first_day) = 10),
	last_day   TEXT    NOT NULL UNIQUE CHECK (length(last_day) = 10 AND last_day >= first_day),
	-- log_from is the log's size when the row was written: the root entry
	-- is at this index or later.
	log_from   INTEGER NOT NULL CHECK (log_from >= 0),
	log_index  INTEGER UNIQUE CHECK (log_index IS NULL OR log_index >= log_from),
	-- entry is the signed fieldtip/receipts/v1 root, exactly as logged.
	entry      BLOB    NOT NULL CHECK (length(entry) BETWEEN 1 AND 65535),
	-- sealed_key is the period key sealed with age to the editors; its
	-- SHA-256 is the root's key.
	sealed_key BLOB    NOT NULL CHECK (length(sealed_key) >= 1),
	-- leaves are the tree's sorted 32-byte leaves, concatenated.
	leaves     BLOB    NOT NULL CHECK (length(leaves) >= 32 AND length(leaves) % 32 = 0)
) STRICT;

-- The day an editor's triage first marked a tip rejected or spam; the
-- retention purge counts from it. delete_pending is set when an editor
-- deleted the tip before its period's receipts root was logged: the purge
-- deletes it once the root is. A table of its own rather than a column
-- of tips, so the rows of tips stay as they were; deleted with its tip.
CREATE TABLE tip_marks (
	seq            INTEGER PRIMARY KEY REFERENCES tips (seq) ON DELETE CASCADE,
	rejected_day   TEXT    NOT NULL CHECK (length(rejected_day) = 10),
	delete_pending INTEGER NOT NULL DEFAULT 0 CHECK (delete_pending IN (0, 1))
) STRICT;

CREATE INDEX tip_marks_by_day ON tip_marks (rejected_day);
CREATE INDEX tips_by_day ON tips (day);
