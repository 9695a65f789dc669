// Package suites holds valine-check's Ginkgo v2 specs: the runbook's checks
// and the security battery. Every It runs one check of probes.Catalog through
// a probes.Runner, so the specs have no check logic of their own: the CLI, the
// scheduled probe and these specs share one source of truth. The suite in
// suites_test.go only wires the specs to a target (a local testbed, or a real
// deployment when VALINE_API_URL is set) and labels them.
package suites

import (
	"context"
	"errors"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/valine/valine-check/probes"
)

// Input is what the specs run against. The specs check it in a BeforeEach,
// so a suite that forgot a field fails with a message, not a nil pointer.
type Input struct {
	// Target is the API, and optionally the function whose logs are read.
	Target probes.Target
	// Config holds the expectation, the probe user's credentials, the
	// secrets and the log window.
	Config probes.Config
	// Runner runs each check with the checks it needs and owns the retries
	// for propagation; its zero value uses the runner's defaults.
	Runner probes.Runner
}

// Validate returns an error naming every field the specs need and Input lacks.
func (in Input) Validate() error {
	var errs []error
	if in.Target.API == nil || in.Target.API.BaseURL == "" {
		errs = append(errs, errors.New("Target.API with a BaseURL is required"))
	}
	if _, err := probes.ParseExpect(string(in.Config.Expect)); err != nil {
		errs = append(errs, fmt.Errorf("Config.Expect: %w", err))
	}
	if in.Config.ProbeEmail == "" || in.Config.ProbePassword.IsEmpty() {
		errs = append(errs, errors.New("Config.ProbeEmail and Config.ProbePassword are required"))
	}
	return errors.Join(errs...)
}

// RunbookSpecs adds an It for each of the runbook's checks that apply under
// expect (every catalog check that is not in the security battery: login,
// new-token-valid, new-secret-in-use, old-token-rejected or
// old-token-accepted, refresh, no-log-errors), labelled with the check's own
// labels. input is called before each spec; its Config.Expect must be expect.
func RunbookSpecs(expect probes.Expect, input func() Input) {
	Describe(fmt.Sprintf("runbook checks (%s)", expect), func() {
		var in Input
		BeforeEach(func() {
			in = input()
			Expect(in.Validate()).To(Succeed(), "the suite's Input")
			Expect(in.Config.Expect).To(Equal(expect), "the suite's Input.Config.Expect")
		})
		for _, c := range probes.ForExpect(probes.Catalog(), expect) {
			if !c.HasLabel(probes.LabelSecurity) {
				checkSpec(c, &in)
			}
		}
	})
}

// SecuritySpecs adds an It for each check of the security battery (the
// catalog's checks labelled security), under either expectation.
func SecuritySpecs(input func() Input) {
	Describe("security battery", Label(probes.LabelSecurity), func() {
		var in Input
		BeforeEach(func() {
			in = input()
			Expect(in.Validate()).To(Succeed(), "the suite's Input")
		})
		for _, c := range probes.Catalog() {
			if c.HasLabel(probes.LabelSecurity) {
				checkSpec(c, &in)
			}
		}
	})
}

// checkSpec adds the It that runs one check. in is read when the spec runs,
// after the BeforeEach has filled it.
func checkSpec(c probes.Check, in *Input) {
	It(c.Name+": "+c.Description, Label(c.Labels...), func(ctx SpecContext) {
		ExpectCheckPasses(ctx, *in, c.Name)
	})
}

// ExpectCheckPasses runs the named check through in.Runner and asserts that
// it passes (see Pass). A check the runner skipped because a check it needs
// failed fails too, naming that check: otherwise a broken login would turn
// every spec that needs it into a silent skip.
func ExpectCheckPasses(ctx context.Context, in Input, name string) {
	GinkgoHelper()
	rep, err := RunCheck(ctx, in, name)
	Expect(err).NotTo(HaveOccurred())
	for _, r := range Verdicts(rep, name) {
		switch {
		case r.Name == name:
			AddReportEntry(name, resultEntry{r}, ReportEntryVisibilityFailureOrVerbose)
			Expect(r).To(Pass())
		case r.Outcome != probes.Pass:
			AddReportEntry(r.Name, resultEntry{r})
			Expect(r).To(Pass(), "%s needs %s", name, r.Name)
		}
	}
}

// RunCheck runs the named check of the catalog, with the checks it needs
// (the runner runs them first and hands their session on), and returns the
// runner's report.
func RunCheck(ctx context.Context, in Input, name string) (probes.Report, error) {
	checks, err := probes.Select(probes.ForExpect(probes.Catalog(), in.Config.Expect), []string{name})
	if err != nil {
		return probes.Report{}, fmt.Errorf("selecting %s under expect %q: %w", name, in.Config.Expect, err)
	}
	return in.Runner.Run(ctx, checks, in.Target, in.Config), nil
}

// Verdicts returns the results of the report that bear on the named check:
// those of the checks it needs, in run order, then its own last. A check
// missing from the report is returned as an Error result.
func Verdicts(rep probes.Report, name string) []probes.Result {
	var out []probes.Result
	own := probes.Result{Name: name, Outcome: probes.Error, Reason: "the runner returned no result for it"}
	for _, r := range rep.Results {
		if r.Name == name {
			own = r
		} else {
			out = append(out, r)
		}
	}
	return append(out, own)
}
