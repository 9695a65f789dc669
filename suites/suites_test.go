package suites

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/valine/valine-check/probes"
)

func TestSuites(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "valine-check suites")
}

// stage readies the target for one expectation and returns what the specs
// run against, or why they do not apply: on the testbed it rotates the
// secret; on a deployment, the expectation VALINE_EXPECT did not choose does
// not apply.
var stage func(ctx context.Context, expect probes.Expect) (in Input, skip string)

var _ = BeforeSuite(func(ctx SpecContext) {
	if os.Getenv(envAPIURL) != "" {
		d, err := deploymentFromEnv(ctx, os.Getenv)
		Expect(err).NotTo(HaveOccurred(), "reading the deployment to check from the environment")
		stage = d.stage
		hidden = d.secrets()
		return
	}
	tb, err := startTestbed(ctx)
	Expect(err).NotTo(HaveOccurred(), "starting the local testbed")
	DeferCleanup(tb.world.Close)
	stage = tb.stage
	hidden = tb.secrets()
})

// The containers are Ordered so the grace period comes before the finalize,
// as in a zero-downtime rotation, and ContinueOnFailure so that one failed
// check does not skip the checks after it.
var _ = Describe("after a rotation", Ordered, ContinueOnFailure, func() {
	expectation("grace period", probes.Grace, probes.LabelGrace)
	expectation("after finalize", probes.Strict, probes.LabelStrict)
})

// expectation wires the runbook's specs and the security battery, under one
// expectation, to the target stage readies once for them.
func expectation(text string, expect probes.Expect, label string) {
	Describe(text, Ordered, Label(label), func() {
		var in Input
		var skip string
		BeforeAll(func(ctx SpecContext) { in, skip = stage(ctx, expect) })
		input := func() Input {
			if skip != "" {
				Skip(skip) // in each spec, so each carries the reason
			}
			return in
		}
		RunbookSpecs(expect, input)
		SecuritySpecs(input)
	})
}
