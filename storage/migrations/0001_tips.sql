-- Version 1: tips as ciphertext, the bundles the server accepted, settings.
-- No column holds an address, a user agent or a time finer than a day.

CREATE TABLE tips (
	-- seq is the editors' cursor: arrival order, never reused.
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	id             BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
	day            TEXT    NOT NULL CHECK (length(day) = 10),
	bundle_version INTEGER NOT NULL,
	sha256         BLOB    NOT NULL CHECK (length(sha256) = 32),
	length         INTEGER NOT NULL CHECK (length > 0),
	ciphertext     BLOB    NOT NULL CHECK (length(ciphertext) = length),
	receipt        BLOB    NOT NULL
) STRICT;

CREATE TABLE bundles (
	version INTEGER PRIMARY KEY,
	signed  BLOB    NOT NULL,
	day     TEXT    NOT NULL CHECK (length(day) = 10)
) STRICT;

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
