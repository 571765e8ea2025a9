-- Version 11: tips handed over to editors added after they arrived
-- (docs/log.md, "Tips handed over"; issue 10). A row is a tip's padded
-- plaintext re-encrypted by an editor, with age, to one editor a later
-- bundle added; a handover event in the log names its SHA-256, and the
-- server serves it to that editor alone. The server cannot read it: it
-- learns that a handover happened, of which tip, to whom, and its size.
-- No day, no address; deleted with its tip.
CREATE TABLE tip_handovers (
	seq        INTEGER NOT NULL REFERENCES tips (seq) ON DELETE CASCADE,
	-- editor is the label of the editor it is for.
	editor     TEXT    NOT NULL CHECK (length(editor) BETWEEN 1 AND 32),
	length     INTEGER NOT NULL CHECK (length > 0),
	ciphertext BLOB    NOT NULL CHECK (length(ciphertext) = length),
	PRIMARY KEY (seq, editor)
) STRICT;
