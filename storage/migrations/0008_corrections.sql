-- Version 8: corrections, clarifications and retractions of published
-- claims (docs/claims.md, "Event kinds": correct). Public, like
-- publications: the revealed public part and salt of each correct event,
-- and its type, text and day. Days only.

CREATE TABLE corrections (
	-- idx is the log index of the correct event.
	idx      INTEGER PRIMARY KEY CHECK (idx >= 1),
	claim    TEXT    NOT NULL REFERENCES publications (claim),
	day      TEXT    NOT NULL CHECK (length(day) = 10),
	type     TEXT    NOT NULL CHECK (type IN ('correction', 'clarification', 'retraction')),
	text     TEXT    NOT NULL CHECK (length(text) >= 1),
	-- revealed is the correction request (protocol.RevealedEvent),
	-- exactly: {"index":…,"salt":…,"public":…}.
	revealed BLOB    NOT NULL CHECK (length(revealed) BETWEEN 2 AND 70000)
) STRICT;

CREATE INDEX corrections_by_claim ON corrections (claim, idx);
