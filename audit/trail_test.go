package audit

import (
	"errors"
	"reflect"
	"testing"
)

func TestTrailGood(t *testing.T) {
	c, id := publishedClaim(t)
	data := c.trail(id)
	rep, err := CheckTrail(data, testNewsroom.Verifier)
	if err != nil {
		t.Fatalf("CheckTrail: %v\n%s", err, data)
	}
	if rep.Claim != id || rep.Text != "Copper concentrate leaves the Hyesan mine by truck at night." {
		t.Errorf("report claim %s %q", rep.Claim, rep.Text)
	}
	if got, want := rep.Cosigners, []string{"bob", "carol"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cosigners %v, want %v", got, want)
	}
	if got, want := rep.Policy.Approvers, []string{"bob", "carol"}; !reflect.DeepEqual(got, want) {
		t.Errorf("approvers %v, want %v", got, want)
	}
	if len(rep.Policy.Clusters) != 2 || len(rep.Policy.Others) != 1 {
		t.Errorf("clusters %+v, others %+v", rep.Policy.Clusters, rep.Policy.Others)
	}
	if !reflect.DeepEqual(rep.Periods, []Period{OneDay("2026-03-13")}) {
		t.Errorf("periods %v", rep.Periods)
	}
	var te *TrailError
	if _, err := CheckTrail(data[:len(data)-2], testNewsroom.Verifier); !errors.As(err, &te) || !errors.Is(err, ErrTrailFormat) {
		t.Errorf("truncated trail: %v", err)
	}
	t.Logf("%d bytes", len(data))
}
