package proberun_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/proberun"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// rig is a testbed world with the probe user's credentials in the
// emulated Secrets Manager, as the scheduled probe finds them.
type rig struct {
	w       *testbed.World
	sm      *secretsmanager.Client
	credsID string
	backup  rotate.Backup
	// initial is the secret the world started with.
	initial secret.Secret
}

func startRig(t *testing.T, opts testbed.Options) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := testbed.Start(ctx, opts)
	if err != nil {
		t.Fatalf("testbed.Start: %v", err)
	}
	t.Cleanup(w.Close)
	r := &rig{w: w, sm: secretsmanager.NewFromConfig(w.AWS), initial: secret.NewSecret(w.InitialSecret())}
	r.credsID = "valine-probe/" + w.Function
	r.backup = rotate.Backup{API: r.sm, Name: "valine-check/" + w.Function}
	r.putCredentials(t, w.ProbeEmail, w.ProbePassword)
	return r
}

// putCredentials stores the probe user's credentials as the deploy
// template's secret holds them.
func (r *rig) putCredentials(t *testing.T, email, password string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	_, err := r.sm.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(r.credsID), SecretString: aws.String(string(b))})
	if err != nil {
		_, err = r.sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(r.credsID), SecretString: aws.String(string(b))})
	}
	if err != nil {
		t.Fatalf("storing the probe credentials: %v", err)
	}
}

// rotated puts the world where a rotation in phase p leaves it: the
// functions hold what the phase says, the backup holds old (AWSPREVIOUS)
// and new (AWSCURRENT), and the journal says p.
func (r *rig) rotated(t *testing.T, mode journal.Mode, p journal.Phase) (old, next secret.Secret) {
	t.Helper()
	old = r.initial
	next, err := rotate.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.backup.Store(t.Context(), old, next); err != nil {
		t.Fatalf("Store: %v", err)
	}
	switch p {
	case journal.PhaseGrace:
		err = r.w.SetSecrets(t.Context(), string(next.Reveal()), string(old.Reveal()))
	case journal.PhaseCompleted:
		err = r.w.SetSecrets(t.Context(), string(next.Reveal()), "")
	}
	if err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	now := time.Now().UTC()
	j := journal.Journal{ID: journal.NewRotationID(now), Mode: mode, Phase: p, OldFingerprint: old.Fingerprint(),
		NewFingerprint: next.Fingerprint(), StartedAt: now, UpdatedAt: now}
	if p == journal.PhaseGrace {
		j.GraceDeadline = now.Add(7 * 24 * time.Hour)
	}
	if err := r.backup.WriteJournal(t.Context(), j); err != nil {
		t.Fatalf("WriteJournal: %v", err)
	}
	return old, next
}

// setup is the scheduled probe's setup against the rig, with a fast runner:
// the world converges at once, so a check still failing after 300 ms never
// will pass.
func (r *rig) setup(creds proberun.CredentialSource, backup bool) proberun.Setup {
	s := proberun.Setup{
		API:         &probes.Client{BaseURL: r.w.APIURL, Profile: r.w.Profile, UserAgent: "valine-probe-test"},
		Credentials: creds,
		Runner:      probes.Runner{Convergence: 300 * time.Millisecond, RetryInterval: 20 * time.Millisecond, CheckTimeout: 5 * time.Second},
	}
	if backup {
		s.Backup = journal.Reader{API: r.backup.API, Name: r.backup.Name}
	}
	return s
}

func (r *rig) secretCreds() *proberun.SecretCredentials {
	return &proberun.SecretCredentials{API: r.sm, SecretID: r.credsID}
}

// outcomes maps each check of rep to its outcome.
func outcomes(rep probes.Report) map[string]probes.Outcome {
	out := map[string]probes.Outcome{}
	for _, res := range rep.Results {
		out[res.Name] = res.Outcome
	}
	return out
}

// wantOutcomes checks the named outcomes and that no other check ran.
func wantOutcomes(t *testing.T, rep probes.Report, want map[string]probes.Outcome) {
	t.Helper()
	got := outcomes(rep)
	for name, o := range want {
		if got[name] != o {
			res, _ := rep.Result(name)
			t.Errorf("%s: %q, want %q (%s)", name, got[name], o, res.Reason)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected check %s ran", name)
		}
	}
}

// wantNoSecret fails if text holds any of the values.
func wantNoSecret(t *testing.T, text string, values ...string) {
	t.Helper()
	for _, v := range values {
		if v != "" && strings.Contains(text, v) {
			t.Errorf("output holds a secret value (fingerprint %s)", secret.Fingerprint(v))
		}
	}
}
