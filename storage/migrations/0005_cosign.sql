-- Version 5: editors cosignatures (helper B fills this in).
CREATE TABLE reserved_0005 (x INTEGER) STRICT;
DROP TABLE reserved_0005;
