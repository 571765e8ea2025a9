-- Version 9: unassigned; reserved so that migration 10 (replies) can
-- apply. Whoever is given number 9 replaces this file.
CREATE TABLE reserved_0009 (x INTEGER) STRICT;
DROP TABLE reserved_0009;
