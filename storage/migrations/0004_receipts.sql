-- Version 4: receipts trees and tip marks (helper A fills this in).
CREATE TABLE reserved_0004 (x INTEGER) STRICT;
DROP TABLE reserved_0004;
