package proberun_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
)

// createBackupWithoutJournal creates the rig's backup secret with a value
// and no journal tags: a backup that exists, for a fleet never rotated.
func (r *rig) createBackupWithoutJournal(t *testing.T) {
	t.Helper()
	if _, err := r.sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(r.backup.Name),
		SecretString: aws.String(string(r.initial.Reveal()))}); err != nil {
		t.Fatalf("creating the backup secret: %v", err)
	}
}

// A backup secret that does not exist is a misconfiguration (a wrong name),
// not a fleet never rotated: new-secret-in-use errs saying so, and the run
// is not healthy.
func TestRunWhenTheBackupSecretDoesNotExist(t *testing.T) {
	t.Parallel()
	r := startRig(t, testbed.Options{})
	s := r.setup(r.secretCreds(), true)
	s.Backup.Name = "valine-check/no-such-backup-" + r.w.Function
	rep := s.Run(t.Context())
	wantOutcomes(t, rep, with(withoutJournal, map[string]probes.Outcome{"new-secret-in-use": errd}))
	res, _ := rep.Result("new-secret-in-use")
	if !strings.Contains(res.Reason, s.Backup.Name) || !strings.Contains(res.Reason, "does not exist") {
		t.Errorf("new-secret-in-use reason does not say the secret does not exist: %s", res.Reason)
	}
	if rep.Status() != probes.Error || report.Successes(rep).Percent == 100 {
		t.Errorf("status %s, SuccessPercent %v: a missing backup must not look healthy", rep.Status(), report.Successes(rep).Percent)
	}
}
