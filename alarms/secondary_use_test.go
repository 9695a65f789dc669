package alarms_test

import (
	"strings"
	"testing"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/profile"
)

// Status's secondary-use line never says "none" from logs that could not
// show any: a profile without a secondary has no answer, a window without
// verification lines is blind, and otherwise the count is given.
func TestMeasureSecondaryUse(t *testing.T) {
	t.Parallel()
	w := insightsWorld(t)
	apiTraffic(t, w, 2, 0, 0) // includes one old token verified by the secondary
	r := fakeRunner(w, newFakeClock())
	start, end := lastHour()
	groups := []string{w.LogGroup}

	u, err := alarms.MeasureSecondaryUse(t.Context(), r, w.Profile, groups, start, end)
	if err != nil || u.Blind || u.Total != 1 || !strings.Contains(u.String(), "1 verifications") {
		t.Errorf("runbook profile: %+v %v (%s)", u, err, u)
	}
	blindProfile := w.Profile
	blindProfile.LogVerificationPattern = "nothing logs this"
	u, err = alarms.MeasureSecondaryUse(t.Context(), r, blindProfile, groups, start, end)
	if err != nil || !u.Blind || !strings.HasPrefix(u.String(), "BLIND") || strings.Contains(u.String(), "none") {
		t.Errorf("a pattern that matches nothing: %+v %v (%s)", u, err, u)
	}
	u, err = alarms.MeasureSecondaryUse(t.Context(), r, profile.Presets["valine"], groups, start, end)
	if err != nil || u.NotApplicable == "" || !strings.Contains(u.String(), "names no secondary variable") {
		t.Errorf("valine profile: %+v %v (%s)", u, err, u)
	}
}
