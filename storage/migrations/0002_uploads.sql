-- Version 2: resumable uploads staged on disk, the upload ids whose proofs
-- of work are spent, and the signed proof-of-work seed of each epoch.
-- As in version 1: no address, no user agent, no time finer than a day.
-- Uploads and spent ids are WITHOUT ROWID tables keyed by a random id, so
-- their order on disk says nothing about arrival order.

CREATE TABLE uploads (
	id             BLOB    PRIMARY KEY CHECK (length(id) = 16),
	-- SHA-256 of the client's resume secret; the secret itself is never kept.
	resume_hash    BLOB    NOT NULL CHECK (length(resume_hash) = 32),
	bundle_version INTEGER NOT NULL,
	length         INTEGER NOT NULL CHECK (length > 0),
	frame_size     INTEGER NOT NULL CHECK (frame_size IN (8192, 16384)),
	-- received is the server's offset: every byte before it is in
	-- upload_frames and was acknowledged.
	received       INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
	-- expires is the first day on which the unfinished upload is deleted.
	expires        TEXT    NOT NULL CHECK (length(expires) = 10)
) STRICT, WITHOUT ROWID;

CREATE TABLE upload_frames (
	upload_id BLOB    NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
	offset    INTEGER NOT NULL CHECK (offset >= 0),
	data      BLOB    NOT NULL,
	PRIMARY KEY (upload_id, offset)
) STRICT, WITHOUT ROWID;

CREATE TABLE spent_uploads (
	id    BLOB    PRIMARY KEY CHECK (length(id) = 16),
	-- epoch of the proof-of-work seed the upload's proofs used; a spent id
	-- is forgotten once its epoch is no longer accepted.
	epoch INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE pow_seeds (
	epoch  INTEGER PRIMARY KEY,
	signed BLOB    NOT NULL
) STRICT;
