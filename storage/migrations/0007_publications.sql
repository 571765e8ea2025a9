-- Version 7: published claims (docs/claims.md; docs/log.md,
-- "Publications"). Everything stored here is public once the publication
-- is accepted: the revealed public parts and their salts, the trail
-- package, the claim's text and scope, counts the trail shows. Never a
-- private part, a tip id or a ciphertext hash (the server never learns
-- them); days only, never a finer time. Package server checks every row
-- against its own log before it is stored.

CREATE TABLE publications (
	-- claim is the claim id, 16 bytes in unpadded base64url.
	claim          TEXT    PRIMARY KEY CHECK (length(claim) = 22),
	-- publication is the log index of the publish event.
	publication    INTEGER NOT NULL UNIQUE CHECK (publication >= 1),
	-- day is the publish event's day.
	day            TEXT    NOT NULL CHECK (length(day) = 10),
	-- revealed is the events of the claim through the publication, as
	-- the editor revealed them: the JSON list of the publish request
	-- (protocol.PublishRequest), exactly.
	revealed       BLOB    NOT NULL CHECK (length(revealed) BETWEEN 2 AND 33554432),
	-- pending: everything checked but the witness; accepted: public.
	state          TEXT    NOT NULL CHECK (state IN ('pending', 'accepted')),
	-- What a pending publication waits for: a checkpoint of at least
	-- need_size entries cosigned by need_cosigners editors.
	need_size      INTEGER NOT NULL CHECK (need_size >= 0),
	need_cosigners INTEGER NOT NULL CHECK (need_cosigners >= 0),
	-- Accepted: the trail package (fieldtip/trail/v1) and the size of the
	-- head its proofs are against; rebuilt with a newer head when a
	-- correction is added. NULL while pending.
	head           INTEGER CHECK (head IS NULL OR head > publication),
	trail          BLOB    CHECK (trail IS NULL OR length(trail) BETWEEN 1 AND 33554432),
	-- What lists show of an accepted publication, from its checked trail
	-- ('' and 0 while pending).
	text           TEXT    NOT NULL,
	scope          TEXT    NOT NULL,
	clusters       INTEGER NOT NULL CHECK (clusters >= 0),
	approvals      INTEGER NOT NULL CHECK (approvals >= 0),
	CHECK ((state = 'pending') = (trail IS NULL) AND (trail IS NULL) = (head IS NULL))
) STRICT;

CREATE INDEX publications_by_state ON publications (state, publication);
