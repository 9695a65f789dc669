package alarms

import (
	"fmt"
	"slices"
	"strings"
	"time"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// CompareThresholds say how much worse the "after" snapshot may look than
// the "before" one. Values are used as given: start from
// DefaultCompareThresholds.
type CompareThresholds struct {
	// MaxFailureIncreasePer5m is how much the rate of failed JWT
	// verifications (jwt-failures, per 5 minutes) may rise.
	MaxFailureIncreasePer5m float64 `json:"maxFailureIncreasePer5m"`
	// MaxErrorIncreasePer5m is the same for function errors (errors).
	MaxErrorIncreasePer5m float64 `json:"maxErrorIncreasePer5m"`
	// SecondaryUseIsFinding makes any verification with the secondary
	// secret in the after window a finding: set it after finalize, when no
	// instance should hold a secondary any more.
	SecondaryUseIsFinding bool `json:"secondaryUseIsFinding"`
	// ProbeRefusalsAfter is how many tokens the probe sent in the after
	// window expecting a refusal. Where the API logs no User-Agent (the
	// after snapshot's probe-refusals query found none of them), the
	// failed verifications after are counted less these.
	ProbeRefusalsAfter int `json:"probeRefusalsAfter,omitempty"`
}

// DefaultCompareThresholds tolerate 5 more failed verifications and 5 more
// errors per 5 minutes, and no finding on secondary use.
func DefaultCompareThresholds() CompareThresholds {
	return CompareThresholds{MaxFailureIncreasePer5m: 5, MaxErrorIncreasePer5m: 5}
}

// Verdict is the comparison of two snapshots.
type Verdict struct {
	// OK is true when there is no finding. Unchecked items do not clear
	// it, nor do they set it: read them.
	OK bool `json:"ok"`
	// Findings say, with numbers, what got worse beyond the thresholds.
	Findings []string `json:"findings"`
	// Unchecked lists the comparisons that could not be made (a query or
	// the alarms missing from a snapshot), and why.
	Unchecked []string `json:"unchecked,omitempty"`
	// Figures are the numbers compared.
	Figures []Figure `json:"figures"`
	// Blind is true when a window showed no verification line at all: the
	// failure and secondary-use figures could not have seen anything.
	Blind bool `json:"blind,omitempty"`
}

// Figure is one number before and after.
type Figure struct {
	Name   string  `json:"name"`
	Before float64 `json:"before"`
	After  float64 `json:"after"`
}

// Summary is the verdict in one line.
func (v Verdict) Summary() string {
	var b strings.Builder
	if v.OK {
		b.WriteString("logs and alarms: no finding")
	} else {
		fmt.Fprintf(&b, "logs and alarms: %d finding(s): %s", len(v.Findings), strings.Join(v.Findings, "; "))
	}
	if len(v.Unchecked) > 0 {
		fmt.Fprintf(&b, " (not checked: %s)", strings.Join(v.Unchecked, "; "))
	}
	return b.String()
}

// Compare judges after against before:
//
//   - jwt-failures and errors: the after window's rate per 5 minutes may
//     exceed the before window's by at most the threshold (rates, so windows
//     of different lengths compare; see Result.RatePer5m);
//   - secondary-use: with SecondaryUseIsFinding, any use in the after window
//     is a finding;
//   - alarms: an alarm in ALARM after that was not in ALARM before (or did
//     not exist) is a finding.
//
// Every query present in either snapshot gets figures (rate per 5 minutes
// and total); a comparison missing a side is listed in Unchecked.
func Compare(before, after Snapshot, th CompareThresholds) Verdict {
	v := Verdict{Findings: []string{}, Figures: []Figure{}}
	for _, name := range queryNamesOf(before, after) {
		b, hasB := before.Queries[name]
		a, hasA := after.Queries[name]
		field := a.Field
		if field == "" {
			field = b.Field
		}
		v.Figures = append(v.Figures,
			Figure{Name: name + " per 5m", Before: rate(b, hasB, field), After: rate(a, hasA, field)},
			Figure{Name: name + " total", Before: b.Total(field), After: a.Total(field)})
	}
	v.blindness(before, "before")
	v.blindness(after, "after")
	v.rise(before, after, QueryJWTFailures, "failed JWT verifications", th.MaxFailureIncreasePer5m, v.probeRefusals(after, th.ProbeRefusalsAfter))
	v.rise(before, after, QueryErrors, "function errors", th.MaxErrorIncreasePer5m, 0)
	if th.SecondaryUseIsFinding {
		v.secondaryUse(after)
	}
	v.alarms(before, after)
	v.OK = len(v.Findings) == 0
	return v
}

// blindness notes a snapshot whose verifications query ran and found no
// line: its other figures could not have seen anything.
func (v *Verdict) blindness(s Snapshot, side string) {
	r, ok := s.Queries[QueryVerifications]
	if !ok || r.Total(r.Field) > 0 {
		return
	}
	v.Blind = true
	v.Unchecked = append(v.Unchecked, fmt.Sprintf("BLIND %s the change: no verification line at all between %s and %s, so the failure and secondary-use figures could not see anything (is the profile's logVerificationPattern right?)",
		side, clock(s.Window.Start), clock(s.Window.End)))
}

// probeRefusals is how many of the after window's failed verifications
// are the probe's own refusals that the queries could not leave out: all
// of them when its marker shows on no line (the API logs no User-Agent),
// none when the marker is seen (the queries left them out already).
func (v *Verdict) probeRefusals(after Snapshot, sent int) float64 {
	r, ok := after.Queries[QueryProbeRefusals]
	if sent <= 0 || !ok || r.Total(r.Field) > 0 {
		return 0
	}
	v.Figures = append(v.Figures, Figure{Name: "probe refusals left out", After: float64(sent)})
	return float64(sent)
}

// rise checks that query's rate did not rise by more than allowed, the
// after window counted less discount (the probe's own lines).
func (v *Verdict) rise(before, after Snapshot, query, what string, allowed, discount float64) {
	b, okB := before.Queries[query]
	a, okA := after.Queries[query]
	if !okB || !okA {
		v.Unchecked = append(v.Unchecked, missing(query, before, after, okB, okA))
		return
	}
	totalA := max(0, a.Total(a.Field)-discount)
	rb, ra := b.RatePer5m(b.Field), totalA*float64(5*time.Minute)/float64(max(a.End.Sub(a.Start), 5*time.Minute))
	if ra-rb > allowed {
		v.Findings = append(v.Findings, fmt.Sprintf(
			"%s rose from %s to %s per 5 minutes (%g in the %s before, %g in the %s after), more than the %g allowed",
			what, oneDecimal(rb), oneDecimal(ra), b.Total(b.Field), windowLength(before.Window), totalA, windowLength(after.Window), allowed))
	}
}

// secondaryUse makes any secondary-secret verification after a finding.
func (v *Verdict) secondaryUse(after Snapshot) {
	a, ok := after.Queries[QuerySecondaryUse]
	if !ok {
		v.Unchecked = append(v.Unchecked, missing(QuerySecondaryUse, Snapshot{Queries: map[string]Result{QuerySecondaryUse: {}}}, after, true, false))
		return
	}
	n := a.Total(a.Field)
	if n == 0 {
		return
	}
	peak, at := a.MaxPerBin(a.Field)
	msg := fmt.Sprintf("%g verification(s) still used the secondary secret between %s and %s", n, clock(after.Window.Start), clock(after.Window.End))
	if !at.IsZero() {
		msg += fmt.Sprintf(" (peak %g in the 5 minutes from %s)", peak, clock(at))
	}
	v.Findings = append(v.Findings, msg+": an instance or a client still holds it")
}

// alarms finds the alarms that went to ALARM.
func (v *Verdict) alarms(before, after Snapshot) {
	if before.AlarmsError != "" || after.AlarmsError != "" {
		v.Unchecked = append(v.Unchecked, "alarms: "+firstNonEmpty(before.AlarmsError, after.AlarmsError))
	}
	if len(before.Alarms) == 0 && len(after.Alarms) == 0 {
		return
	}
	was := map[string]string{}
	inAlarm := func(states []AlarmStatus) float64 {
		n := 0
		for _, s := range states {
			if s.State == string(cwtypes.StateValueAlarm) {
				n++
			}
		}
		return float64(n)
	}
	for _, s := range before.Alarms {
		was[s.Name] = s.State
	}
	v.Figures = append(v.Figures, Figure{Name: "alarms in ALARM", Before: inAlarm(before.Alarms), After: inAlarm(after.Alarms)})
	for _, s := range after.Alarms {
		if s.State != string(cwtypes.StateValueAlarm) || was[s.Name] == s.State {
			continue
		}
		from := was[s.Name]
		if from == "" {
			from = "absent"
		}
		msg := fmt.Sprintf("alarm %s went from %s to ALARM between the snapshots", s.Name, from)
		if s.Reason != "" {
			msg += ": " + s.Reason
		}
		v.Findings = append(v.Findings, msg)
	}
}

// queryNamesOf lists the queries of either snapshot, the known ones first.
func queryNamesOf(snaps ...Snapshot) []string {
	known := []string{QueryJWTFailures, QuerySecondaryUse, QueryUnauthorized, QueryErrors, QueryVerifications, QueryProbeRefusals}
	seen := map[string]bool{}
	for _, s := range snaps {
		for n := range s.Queries {
			seen[n] = true
		}
	}
	var names []string
	for _, n := range known {
		if seen[n] {
			names = append(names, n)
			delete(seen, n)
		}
	}
	rest := make([]string, 0, len(seen))
	for n := range seen {
		rest = append(rest, n)
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// missing says which side of a comparison lacks query, and why.
func missing(query string, before, after Snapshot, okB, okA bool) string {
	var sides []string
	if !okB {
		sides = append(sides, "before ("+orUnknown(before.Errors[query])+")")
	}
	if !okA {
		sides = append(sides, "after ("+orUnknown(after.Errors[query])+")")
	}
	return fmt.Sprintf("%s: no result %s", query, strings.Join(sides, " and "))
}

func rate(r Result, ok bool, field string) float64 {
	if !ok {
		return 0
	}
	return r.RatePer5m(field)
}

func orUnknown(s string) string {
	if s == "" {
		return "not run"
	}
	return s
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func oneDecimal(f float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0") }

func windowLength(w Window) string { return shortDuration(w.End.Sub(w.Start).Round(time.Second)) }

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }
