package newsdesk

import (
	"testing"

	"fieldtip/audit"
)

// handoverEvents puts the tips into the last event of bodies while it has
// room, and the rest into events of their own, maxHandoverTips each.
func TestHandoverEvents(t *testing.T) {
	tips := func(n int) []audit.HandedOverTip {
		out := make([]audit.HandedOverTip, n)
		for i := range out {
			out[i].Tip[0], out[i].Tip[1], out[i].Length = byte(i), byte(i>>8), 1
		}
		return out
	}
	body := []audit.HandedOver{{Index: 1, Ciphertext: []byte{1}}}
	for _, c := range []struct {
		name     string
		batches  [][]audit.HandedOver
		lastSize int
		tips     int
		want     [][2]int // per event: bodies, tips
	}{
		{"nothing", nil, 0, 0, nil},
		{"bodies only", [][]audit.HandedOver{body, body}, 100, 0, [][2]int{{1, 0}, {1, 0}}},
		{"tips only", nil, 0, 3, [][2]int{{0, 3}}},
		{"tips with the last bodies", [][]audit.HandedOver{body, body}, 100, 3, [][2]int{{1, 0}, {1, 3}}},
		{"no room in the last", [][]audit.HandedOver{body}, maxHandoverBatch, 3, [][2]int{{1, 0}, {0, 3}}},
		{"room for two", [][]audit.HandedOver{body}, maxHandoverBatch - 2*handoverTipBytes, 3, [][2]int{{1, 2}, {0, 1}}},
		{"more than an event holds", nil, 0, maxHandoverTips + 1, [][2]int{{0, maxHandoverTips}, {0, 1}}},
	} {
		got := handoverEvents("carol", c.batches, c.lastSize, tips(c.tips))
		var shape [][2]int
		seen := 0
		for _, e := range got {
			if e.Kind != audit.KindHandover || e.To != "carol" {
				t.Errorf("%s: an event %+v", c.name, e)
			}
			for _, tp := range e.Tips {
				if tp.Tip[0] != byte(seen) || tp.Tip[1] != byte(seen>>8) {
					t.Errorf("%s: tips out of order at %d", c.name, seen)
				}
				seen++
			}
			shape = append(shape, [2]int{len(e.Bodies), len(e.Tips)})
		}
		if len(shape) != len(c.want) {
			t.Errorf("%s: events %v, want %v", c.name, shape, c.want)
			continue
		}
		for i := range shape {
			if shape[i] != c.want[i] {
				t.Errorf("%s: events %v, want %v", c.name, shape, c.want)
				break
			}
		}
	}
}
