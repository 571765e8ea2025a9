package server

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"fieldtip/audit"
	"fieldtip/storage"
)

// TestCheckpointCaps holds the one checkpoint cap, audit.MaxCheckpointSize,
// equal to the copies storage cannot import: its constant and the schema's
// CHECK on a stored cosigned checkpoint (issue 12).
func TestCheckpointCaps(t *testing.T) {
	if storage.MaxCosignedCheckpoint != audit.MaxCheckpointSize {
		t.Errorf("storage.MaxCosignedCheckpoint = %d, want audit.MaxCheckpointSize = %d", storage.MaxCosignedCheckpoint, audit.MaxCheckpointSize)
	}
	sql, err := os.ReadFile("../storage/migrations/0005_cosign.sql")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`length\(signed\) BETWEEN 1 AND (\d+)`).FindSubmatch(sql)
	if m == nil {
		t.Fatal("0005_cosign.sql has no CHECK on length(signed)")
	}
	if n, _ := strconv.Atoi(string(m[1])); n != audit.MaxCheckpointSize {
		t.Errorf("0005_cosign.sql caps a checkpoint at %d bytes, want audit.MaxCheckpointSize = %d", n, audit.MaxCheckpointSize)
	}
}
