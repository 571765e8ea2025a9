-- Version 6: upload chunks (issue 11; the uploads branch fills this in).
CREATE TABLE reserved_0006 (x INTEGER) STRICT;
DROP TABLE reserved_0006;
