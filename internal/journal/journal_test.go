package journal

import "testing"

// The phase table is the one definition every reader and the writer use:
// each phase is placed on purpose (a new phase fails here until it is),
// and the questions the scheduled probe asks follow from it.
func TestPhaseHolds(t *testing.T) {
	want := map[Phase]struct {
		primary, secondary Which
		signsWithNew       bool
		steady             bool
	}{
		PhaseStarted:     {WhichOld, WhichNone, false, false},
		PhaseBackedUp:    {WhichOld, WhichNone, false, false},
		PhaseProbing:     {WhichOld, WhichNew, false, false}, // the new secret only as the secondary
		PhaseStaged:      {WhichNew, WhichOld, true, false},
		PhaseGrace:       {WhichNew, WhichOld, true, true},
		PhaseApplied:     {WhichNew, WhichNone, true, false},
		PhaseFinalizing:  {WhichNew, WhichNone, true, false},
		PhaseCompleted:   {WhichNew, WhichNone, true, true},
		PhaseRollingBack: {WhichOld, WhichNone, false, false},
		PhaseRolledBack:  {WhichOld, WhichNone, false, true},
		PhaseAbandoned:   {WhichOld, WhichNone, false, true},
	}
	if len(want) != len(Phases) {
		t.Fatalf("the table covers %d phases of %d", len(want), len(Phases))
	}
	for _, p := range Phases {
		w, ok := want[p]
		if !ok {
			t.Errorf("phase %s is not placed", p)
			continue
		}
		if primary, secondary := PhaseHolds(p); primary != w.primary || secondary != w.secondary {
			t.Errorf("PhaseHolds(%s) = %v, %v; want %v, %v", p, primary, secondary, w.primary, w.secondary)
		}
		if SignsWithNew(p) != w.signsWithNew || Steady(p) != w.steady {
			t.Errorf("%s: SignsWithNew %v, Steady %v; want %v, %v", p, SignsWithNew(p), Steady(p), w.signsWithNew, w.steady)
		}
	}
}
