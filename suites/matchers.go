package suites

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega/types"

	"github.com/valine/valine-check/probes"
)

// Pass matches a probes.Result whose check passed. A warning passes too, and
// is added to the spec's report so it is not lost; a skipped check skips the
// running spec (Ginkgo's Skip) with the check's reason, so Pass must be used
// inside a running spec. Fail and Error do not match; the failure message
// names the check, its outcome and its reason.
//
// The messages are built from the Result's public facts only, never with
// Gomega's format.Object, which would print unexported fields such as the
// session's tokens.
func Pass() types.GomegaMatcher {
	return &passMatcher{
		skip: func(msg string) { Skip(msg) },
		warn: func(r probes.Result) { AddReportEntry(r.Name+" warning", r.Reason) },
	}
}

// passMatcher is Pass with its Ginkgo side effects injectable, for tests.
type passMatcher struct {
	skip func(msg string)
	warn func(r probes.Result)
}

func (m *passMatcher) Match(actual any) (bool, error) {
	r, ok := actual.(probes.Result)
	if !ok {
		return false, fmt.Errorf("Pass matcher expects a probes.Result, got %T", actual)
	}
	switch r.Outcome {
	case probes.Pass:
		return true, nil
	case probes.Warn:
		m.warn(r)
		return true, nil
	case probes.Skip:
		m.skip(fmt.Sprintf("check %s skipped: %s", r.Name, r.Reason))
		return false, nil // reached only when skip does not stop the spec
	}
	return false, nil
}

func (m *passMatcher) FailureMessage(actual any) string {
	r, _ := actual.(probes.Result)
	verdict := "failed"
	if r.Outcome == probes.Error {
		verdict = "could not run (error: the environment failed, nothing was learned)"
	} else if r.Outcome != probes.Fail {
		verdict = fmt.Sprintf("did not pass (%s)", r.Outcome)
	}
	return fmt.Sprintf("check %s %s: %s%s", r.Name, verdict, r.Reason, attempts(r))
}

func (m *passMatcher) NegatedFailureMessage(actual any) string {
	r, _ := actual.(probes.Result)
	return fmt.Sprintf("check %s passed (%s), but was expected not to: %s%s", r.Name, r.Outcome, r.Reason, attempts(r))
}

// attempts describes the runner's effort, which matters for checks that wait
// for propagation.
func attempts(r probes.Result) string {
	if r.Attempts == 0 {
		return ""
	}
	return fmt.Sprintf(" [%d attempt(s) in %s]", r.Attempts, r.Duration.Round(time.Millisecond))
}

// resultEntry carries a Result into the spec's report: on the console as a
// line, in the JUnit report (a property per entry) as the Result's
// documented JSON form. Handing Ginkgo the Result itself would print it with
// Gomega's format.Object, unexported session included.
type resultEntry struct{ r probes.Result }

// String is the console form.
func (e resultEntry) String() string {
	return fmt.Sprintf("%s: %s%s", e.r.Outcome, e.r.Reason, attempts(e.r))
}

// MarshalJSON is the JUnit form: the report schema's result object.
func (e resultEntry) MarshalJSON() ([]byte, error) { return e.r.MarshalJSON() }
