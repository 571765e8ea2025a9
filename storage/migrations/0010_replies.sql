-- Version 10: replies to sources (docs/replies.md, "The server's
-- storage"). A reply is its random id, the mailbox id it waits under, the
-- day it was written and its ciphertext (an age file to the source's reply
-- recipient, a whole number of 4 KiB up to 32 KiB): no editor, no tip, no
-- time finer than a day, no address. Deleted when the source reads it, or
-- when it expires unread.

CREATE TABLE replies (
	id         BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
	mailbox    BLOB NOT NULL CHECK (length(mailbox) = 32),
	day        TEXT NOT NULL CHECK (length(day) = 10),
	ciphertext BLOB NOT NULL CHECK (length(ciphertext) BETWEEN 4096 AND 32768 AND length(ciphertext) % 4096 = 0)
) STRICT, WITHOUT ROWID;

-- Buckets are ranges of mailbox ids; a mailbox's bytes are summed at each
-- write (its cap).
CREATE INDEX replies_by_mailbox ON replies (mailbox);
