package newsdesk

import (
	"errors"
	"testing"

	"fieldtip/audit"
	"fieldtip/crypto"
)

func TestSourceCounts(t *testing.T) {
	a, b := crypto.MailboxID{1}.String(), crypto.MailboxID{2}.String()
	got := SourceCounts([]TipSummary{{ID: "t1", Mailbox: a}, {ID: "t2", Mailbox: b}, {ID: "t3", Mailbox: a}, {ID: "t4", Mailbox: a}, {ID: "t5"}})
	for tip, want := range map[string]int{"t1": 3, "t2": 1, "t3": 3, "t4": 3, "t5": 0} {
		if got[tip] != want {
			t.Errorf("SourceCounts[%s] = %d, want %d", tip, got[tip], want)
		}
	}
	if len(SourceCounts(nil)) != 0 {
		t.Error("SourceCounts(nil) is not empty")
	}
}

func TestCheckSourceCluster(t *testing.T) {
	a, b := crypto.MailboxID{1}, crypto.MailboxID{2}
	c := &audit.ClaimState{Links: []audit.Link{
		{Index: 3, Cluster: "drivers", Mailbox: a},
		{Index: 4, Cluster: "customs", Mailbox: b, Withdrawn: 9},
		{Index: 5, Cluster: "ledger"},
	}}
	for _, tc := range []struct {
		name    string
		cluster string
		mailbox crypto.MailboxID
		link    int64
	}{
		{"same source, same cluster", "drivers", a, 0},
		{"same source, another cluster", "customs", a, 3},
		{"a source whose link was withdrawn", "ledger", b, 0},
		{"another source", "customs", crypto.MailboxID{3}, 0},
		{"a tip without a reply address", "customs", crypto.MailboxID{}, 0},
	} {
		err := checkSourceCluster(c, "TIP", tc.cluster, tc.mailbox)
		var sm *SourceMismatchError
		switch {
		case tc.link == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.link != 0 && (!errors.As(err, &sm) || sm.Link != tc.link || sm.Other != "drivers"):
			t.Errorf("%s: %v, want a SourceMismatchError naming link %d", tc.name, err, tc.link)
		}
	}
}
