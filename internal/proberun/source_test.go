package proberun_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// TestTheJournalCheckComparesTheSourceOfTruth: for a rotation at rest
// that journalled an SSM parameter as its source of truth, the scheduled
// probe's journal check (new-secret-in-use) passes while the parameter
// holds the secret the rotation put in force, fails naming the source and
// what it holds once it holds another (the next deploy would revert the
// fleet), and errs for a source the probe was not given.
func TestTheJournalCheckComparesTheSourceOfTruth(t *testing.T) {
	t.Parallel()
	r := startRig(t, testbed.Options{})
	_, next := r.rotated(t, journal.ModeMaintenance, journal.PhaseCompleted)
	src := journal.Source{Kind: journal.SourceSSM, Name: "/valine/probe-" + strings.ToLower(rand.Text()[:10]) + "/jwt-secret"}
	j, _, err := r.backup.ReadJournal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	j.Source = src
	if err := r.backup.WriteJournal(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	params := ssm.NewFromConfig(r.w.AWS)
	put := func(v secret.Secret, overwrite bool) {
		t.Helper()
		if _, err := params.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(src.Name), Value: aws.String(string(v.Reveal())),
			Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(overwrite)}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(given journal.Source) probes.Result {
		t.Helper()
		s := r.setup(r.secretCreds(), true)
		s.Source, s.Sources = given, journal.SourceReader{SSM: params}
		res, _ := s.Run(t.Context()).Result("new-secret-in-use")
		return res
	}

	put(next, false)
	if res := run(src); res.Outcome != probes.Pass {
		t.Errorf("the store holds the new secret: %s %s", res.Outcome, res.Reason)
	}
	put(r.initial, true) // someone put the old secret back where the deploy reads
	res := run(src)
	if res.Outcome != probes.Fail || !strings.Contains(res.Reason, src.String()+" holds "+r.initial.Fingerprint()) || !strings.Contains(res.Reason, "next deploy") {
		t.Errorf("the store holds the old secret: %s %s", res.Outcome, res.Reason)
	}
	if strings.Contains(res.Reason, string(r.initial.Reveal())) {
		t.Error("the reason holds the secret")
	}
	if res := run(journal.Source{Kind: journal.SourceSSM, Name: "/elsewhere"}); res.Outcome != probes.Error || !strings.Contains(res.Reason, "may read only /elsewhere") && !strings.Contains(res.Reason, "may read only ssm:/elsewhere") {
		t.Errorf("a journal naming another source: %s %s", res.Outcome, res.Reason)
	}
	if res := run(journal.Source{}); res.Outcome != probes.Pass {
		t.Errorf("no source given: the check must not compare: %s %s", res.Outcome, res.Reason)
	}
}
