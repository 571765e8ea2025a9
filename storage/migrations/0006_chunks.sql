-- Version 6: one durable write per tip (issue 11). An upload's frames are
-- written once, into chunks, and the tip they make is those same rows: a
-- committed tip names its chunks instead of holding a copy. A tip that
-- arrived whole in one write (a one-frame tip: upload message, frame and
-- commit together) keeps its ciphertext in its row, as before. Unfinished
-- uploads keep the SHA-256 state of what they received, so a resumed
-- upload's hash goes on where it stopped, and the day of their last
-- progress, for `fieldtipd uploads`.
-- As before: no address, no user agent, no time finer than a day; tables
-- keyed by random ids are WITHOUT ROWID, so their order on disk says
-- nothing about arrival order.

-- chunks: ciphertext in the frames it arrived in. owner is a random id the
-- server draws when an upload opens (not the client's upload id, so a
-- reused upload id can never reach a tip's bytes); an unfinished upload
-- and then its tip name it.
CREATE TABLE chunks (
	owner  BLOB    NOT NULL CHECK (length(owner) = 16),
	offset INTEGER NOT NULL CHECK (offset >= 0),
	data   BLOB    NOT NULL CHECK (length(data) >= 1),
	PRIMARY KEY (owner, offset)
) STRICT, WITHOUT ROWID;

-- uploads, rebuilt with its chunks' owner, its hash state and its
-- progress day. The staged frames move to chunks (their one copy, made
-- by this migration).
CREATE TABLE uploads_v6 (
	id             BLOB    PRIMARY KEY CHECK (length(id) = 16),
	-- SHA-256 of the client's resume secret; the secret itself is never kept.
	resume_hash    BLOB    NOT NULL CHECK (length(resume_hash) = 32),
	bundle_version INTEGER NOT NULL,
	length         INTEGER NOT NULL CHECK (length > 0),
	frame_size     INTEGER NOT NULL CHECK (frame_size IN (8192, 16384)),
	-- received is the server's offset: every byte before it is in chunks
	-- under owner and was acknowledged.
	received       INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
	-- expires is the first day on which the unfinished upload is deleted.
	expires        TEXT    NOT NULL CHECK (length(expires) = 10),
	owner          BLOB    NOT NULL UNIQUE CHECK (length(owner) = 16),
	-- hash_state is the SHA-256 state after the received bytes (Go's
	-- crypto/sha256 MarshalBinary form); empty when nothing was received,
	-- or for an upload staged before version 6 (its bytes are hashed at
	-- the commit).
	hash_state     BLOB    NOT NULL DEFAULT x'',
	-- progress_day is the day the upload opened or last had a frame
	-- acknowledged.
	progress_day   TEXT    NOT NULL CHECK (length(progress_day) = 10)
) STRICT, WITHOUT ROWID;

INSERT INTO uploads_v6 (id, resume_hash, bundle_version, length, frame_size, received, expires, owner, progress_day)
	SELECT id, resume_hash, bundle_version, length, frame_size, received, expires, randomblob(16), date('now')
	FROM uploads;
INSERT INTO chunks (owner, offset, data)
	SELECT u.owner, f.offset, f.data FROM upload_frames f JOIN uploads_v6 u ON u.id = f.upload_id;
DROP TABLE upload_frames;
DROP TABLE uploads;
ALTER TABLE uploads_v6 RENAME TO uploads;

-- tips, rebuilt: ciphertext may be NULL, for a tip made of chunks. The
-- rows, their seq and the AUTOINCREMENT counter are kept (seq is never
-- reused), and so are the tip_marks that point at them: tip_marks is
-- rebuilt with them, since dropping tips would cascade to it.
CREATE TABLE tips_v6 (
	-- seq is the editors' cursor: arrival order, never reused.
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	id             BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
	day            TEXT    NOT NULL CHECK (length(day) = 10),
	bundle_version INTEGER NOT NULL,
	sha256         BLOB    NOT NULL CHECK (length(sha256) = 32),
	length         INTEGER NOT NULL CHECK (length > 0),
	-- ciphertext is the whole ciphertext of a tip that arrived in one
	-- write, NULL for one made of chunks.
	ciphertext     BLOB    CHECK (ciphertext IS NULL OR length(ciphertext) = length),
	receipt        BLOB    NOT NULL,
	-- chunks is the owner of the tip's chunks, NULL for a tip whose
	-- ciphertext is in its row.
	chunks         BLOB    UNIQUE CHECK (chunks IS NULL OR length(chunks) = 16),
	CHECK ((ciphertext IS NULL) <> (chunks IS NULL))
) STRICT;

CREATE TABLE tip_marks_v6 (
	seq            INTEGER PRIMARY KEY REFERENCES tips_v6 (seq) ON DELETE CASCADE,
	rejected_day   TEXT    NOT NULL CHECK (length(rejected_day) = 10),
	delete_pending INTEGER NOT NULL DEFAULT 0 CHECK (delete_pending IN (0, 1))
) STRICT;

INSERT INTO tips_v6 (seq, id, day, bundle_version, sha256, length, ciphertext, receipt)
	SELECT seq, id, day, bundle_version, sha256, length, ciphertext, receipt FROM tips;
INSERT INTO tip_marks_v6 (seq, rejected_day, delete_pending)
	SELECT seq, rejected_day, delete_pending FROM tip_marks;
-- The counter goes on from the old table's, which may be above every seq
-- left (the newest tips deleted). sqlite_sequence has no key: replace the
-- new table's row by hand.
DELETE FROM sqlite_sequence WHERE name = 'tips_v6';
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'tips_v6', seq FROM sqlite_sequence WHERE name = 'tips';
DROP TABLE tip_marks;
DROP TABLE tips;
ALTER TABLE tips_v6 RENAME TO tips;
ALTER TABLE tip_marks_v6 RENAME TO tip_marks;
CREATE INDEX tip_marks_by_day ON tip_marks (rejected_day);
CREATE INDEX tips_by_day ON tips (day);

-- Deleting an unfinished upload deletes its chunks, unless its tip holds
-- them (a commit inserts the tip, then deletes the upload). Deleting a tip
-- deletes its chunks. secure_delete overwrites them either way.
CREATE TRIGGER uploads_delete_chunks AFTER DELETE ON uploads
	WHEN NOT EXISTS (SELECT 1 FROM tips WHERE chunks = old.owner)
BEGIN
	DELETE FROM chunks WHERE owner = old.owner;
END;

CREATE TRIGGER tips_delete_chunks AFTER DELETE ON tips
	WHEN old.chunks IS NOT NULL
BEGIN
	DELETE FROM chunks WHERE owner = old.chunks;
END;
