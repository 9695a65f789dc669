package alarms

import (
	"context"
	"fmt"
	"time"

	"github.com/valine/valine-check/internal/profile"
)

// SecondaryUse is what a fleet's logs say about tokens still verified with
// the secondary secret over a window: while it is not zero, tokens signed
// with the old secret are still arriving and a grace period should not end.
type SecondaryUse struct {
	// NotApplicable says why the question has no answer (the profile names
	// no secondary variable); "" when it has one.
	NotApplicable string
	// Blind is true when the window shows no verification line at all: a
	// zero would mean nothing.
	Blind bool
	// Total is the secondary-secret verifications; Peak the most in one
	// 5-minute bin, starting at PeakAt.
	Total, Peak float64
	PeakAt      time.Time
	Window      Window
}

// MeasureSecondaryUse runs the secondary-use and verifications queries of
// profile over groups between start and end.
func MeasureSecondaryUse(ctx context.Context, r *Runner, p profile.Profile, groups []string, start, end time.Time) (SecondaryUse, error) {
	u := SecondaryUse{Window: Window{Start: start, End: end}}
	if p.SecondaryVar == "" {
		u.NotApplicable = fmt.Sprintf("profile %s names no secondary variable", p.Name)
		return u, nil
	}
	qs := Queries(p)
	// One line for the measure, not one per query (they run one after the other).
	ctx, stopWaiting := r.Progress.Start(ctx, "Logs Insights queries of secondary-secret use", r.deadlineOf(1).Add(r.deadline()))
	defer stopWaiting()
	verifications, _ := FindQuery(qs, QueryVerifications)
	seen, err := r.Run(ctx, verifications, groups, start, end)
	if err != nil {
		return u, err
	}
	if seen.Total(verifications.Field) == 0 {
		u.Blind = true
		return u, nil
	}
	q, _ := FindQuery(qs, QuerySecondaryUse)
	res, err := r.Run(ctx, q, groups, start, end)
	if err != nil {
		return u, err
	}
	u.Total = res.Total(q.Field)
	if u.Total > 0 {
		u.Peak, u.PeakAt = res.MaxPerBin(q.Field)
	}
	return u, nil
}

// String says it in a line: "none", "N verifications (peak …)", or why
// there is no answer — never "none" from logs that could not show any.
func (u SecondaryUse) String() string {
	switch {
	case u.NotApplicable != "":
		return "not applicable (" + u.NotApplicable + ")"
	case u.Blind:
		return fmt.Sprintf("BLIND: no verification line at all between %s and %s, so secondary-secret use cannot be seen (is the profile's logVerificationPattern right?)",
			clock(u.Window.Start), clock(u.Window.End))
	case u.Total == 0:
		return "none"
	}
	return fmt.Sprintf("%.0f verifications (peak %.0f in the 5 minutes from %s)", u.Total, u.Peak, u.PeakAt.UTC().Format(time.RFC3339))
}
