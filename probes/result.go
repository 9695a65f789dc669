package probes

import (
	"encoding/json"
	"fmt"
	"time"
)

// Outcome is a check's verdict.
type Outcome string

// The outcomes. Error is kept apart from Fail: Fail is a finding about the
// deployment (it answered wrongly); Error means the check could not get an
// answer (network, AWS, a bad input), so nothing was learned.
const (
	Pass  Outcome = "pass"
	Fail  Outcome = "fail"
	Warn  Outcome = "warn"
	Skip  Outcome = "skip"
	Error Outcome = "error"
)

// Result is one check's verdict with the facts behind it. Probes fill Name,
// Outcome, Reason and Details; the runner fills Duration, Attempts and
// ConvergedAfter.
type Result struct {
	// Name is the check's name, such as "old-token-rejected".
	Name string
	// Outcome is the verdict.
	Outcome Outcome
	// Reason says in one sentence, for a human, why: what was sent, what came back.
	Reason string
	// Details holds structured facts (statuses, fingerprints, counts). Never a secret or token value.
	Details map[string]any
	// Duration is the check's wall time, all attempts included.
	Duration time.Duration
	// Attempts is how many times the check ran (more than one only for checks that wait for propagation).
	Attempts int
	// ConvergedAfter is, for a check that waits for propagation and passed,
	// how long after its first attempt it first passed.
	ConvergedAfter *time.Duration

	// Baseline is the same check's outcome against the secret in force
	// before the change, when the run was judged against a baseline
	// (Report.JudgeAgainst); "" otherwise.
	Baseline Outcome
	// PreExisting marks a failure the baseline already had: a finding about
	// the deployment, not caused by the change.
	PreExisting bool
	// BlockedBy names, for a check the runner skipped, the check it needs
	// that did not pass ("" for a check that ran, or skipped on its own).
	BlockedBy string

	// session is what a passing login hands to the checks that need it.
	session *Session
	// transient marks an Error worth retrying within the check's deadline
	// (the API answered 5xx or 429); retryAfter is the wait it asked for.
	transient  bool
	retryAfter time.Duration
	// settled marks a Fail that no wait can change (an input or the
	// profile rules it out): the runner does not retry it.
	settled bool
}

// resultJSON is the documented wire form of a Result (see docs/report-schema.md).
type resultJSON struct {
	Name             string         `json:"name"`
	Outcome          Outcome        `json:"outcome"`
	Reason           string         `json:"reason"`
	DurationMS       float64        `json:"durationMs"`
	Attempts         int            `json:"attempts"`
	ConvergedAfterMS *float64       `json:"convergedAfterMs,omitempty"`
	Details          map[string]any `json:"details,omitempty"`
	Baseline         Outcome        `json:"baseline,omitempty"`
	PreExisting      bool           `json:"preExisting,omitempty"`
	BlockedBy        string         `json:"blockedBy,omitempty"`
}

// MarshalJSON writes the documented form, durations in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	out := resultJSON{
		Name: r.Name, Outcome: r.Outcome, Reason: r.Reason,
		DurationMS: ms(r.Duration), Attempts: r.Attempts, Details: r.Details,
		Baseline: r.Baseline, PreExisting: r.PreExisting, BlockedBy: r.BlockedBy,
	}
	if r.ConvergedAfter != nil {
		v := ms(*r.ConvergedAfter)
		out.ConvergedAfterMS = &v
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the documented form back (used by tests and tools that
// consume reports).
func (r *Result) UnmarshalJSON(b []byte) error {
	var in resultJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = Result{Name: in.Name, Outcome: in.Outcome, Reason: in.Reason, Details: in.Details,
		Duration: fromMS(in.DurationMS), Attempts: in.Attempts, Baseline: in.Baseline, PreExisting: in.PreExisting, BlockedBy: in.BlockedBy}
	if in.ConvergedAfterMS != nil {
		d := fromMS(*in.ConvergedAfterMS)
		r.ConvergedAfter = &d
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fromMS(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func passed(reason string, details map[string]any) Result {
	return Result{Outcome: Pass, Reason: reason, Details: details}
}

func failed(reason string, details map[string]any) Result {
	return Result{Outcome: Fail, Reason: reason, Details: details}
}

func skipped(reason string) Result { return Result{Outcome: Skip, Reason: reason} }

// settledFail is a failure no retry can change.
func settledFail(reason string, details map[string]any) Result {
	r := failed(reason, details)
	r.settled = true
	return r
}

func warned(reason string, details map[string]any) Result {
	return Result{Outcome: Warn, Reason: reason, Details: details}
}

func errored(reason string, details map[string]any) Result {
	return Result{Outcome: Error, Reason: reason, Details: details}
}

// GomegaString keeps Gomega's failure messages, which use reflection, from
// printing the session a login result carries: it shows the verdict.
func (r Result) GomegaString() string {
	return fmt.Sprintf("%s: %s (%s)", r.Name, r.Outcome, r.Reason)
}
