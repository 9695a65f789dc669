package proberun_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/valine/valine-check/internal/emfspec"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/proberun"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
	"github.com/valine/valine-check/rotate"
)

const (
	pass  = probes.Pass
	fail  = probes.Fail
	skip  = probes.Skip
	errd  = probes.Error
	login = "login"
)

// withoutJournal is a healthy run that cannot know the signer.
var withoutJournal = map[string]probes.Outcome{
	login: pass, "new-token-valid": pass, "new-secret-in-use": skip, "refresh": pass,
	"security-alg-none": pass, "security-hs384-hs512": skip, "security-expired": skip,
	"security-no-exp": skip, "security-tampered-signature": pass, "security-empty-key": pass, "security-refresh-as-access": pass,
}

// with returns base with the changes applied.
func with(base map[string]probes.Outcome, changes map[string]probes.Outcome) map[string]probes.Outcome {
	out := maps.Clone(base)
	maps.Copy(out, changes)
	return out
}

// signerKnown is a healthy run whose journal names the signer.
var signerKnown = with(withoutJournal, map[string]probes.Outcome{"new-secret-in-use": pass, "security-hs384-hs512": pass, "security-expired": pass, "security-no-exp": pass})

func TestRunWithoutJournal(t *testing.T) {
	t.Parallel()
	r := startRig(t, testbed.Options{})
	// The backup secret exists, as rotate's Store leaves it, without journal tags.
	r.createBackupWithoutJournal(t)
	for name, backup := range map[string]bool{"no backup configured": false, "backup with no journal": true} {
		t.Run(name, func(t *testing.T) {
			rep := r.setup(r.secretCreds(), backup).Run(t.Context())
			wantOutcomes(t, rep, withoutJournal)
			if rep.Expect != probes.Strict || rep.Status() != probes.Pass {
				t.Errorf("expect %s, status %s", rep.Expect, rep.Status())
			}
			if s := report.Successes(rep); s.Percent != 100 || s.Counted != 7 {
				t.Errorf("SuccessPercent %v over %d checks, want 100 over 7", s.Percent, s.Counted)
			}
			res, _ := rep.Result("new-secret-in-use")
			if !strings.Contains(res.Reason, "journal") {
				t.Errorf("skip reason does not say why: %s", res.Reason)
			}
		})
	}
}

func TestRunFollowsTheJournal(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		mode          journal.Mode
		phase         journal.Phase
		misbehaviours testbed.Misbehaviour
		expect        probes.Expect
		want          map[string]probes.Outcome
	}{
		{"grace: old tokens must be accepted", journal.ModeZeroDowntime, journal.PhaseGrace, 0, probes.Grace,
			with(signerKnown, map[string]probes.Outcome{"old-token-accepted": pass})},
		{"grace, secondary ignored", journal.ModeZeroDowntime, journal.PhaseGrace, testbed.IgnoreSecondary, probes.Grace,
			with(signerKnown, map[string]probes.Outcome{"old-token-accepted": fail})},
		{"completed: old tokens must be refused", journal.ModeMaintenance, journal.PhaseCompleted, 0, probes.Strict,
			with(signerKnown, map[string]probes.Outcome{"old-token-rejected": pass})},
		{"completed, old tokens still accepted", journal.ModeMaintenance, journal.PhaseCompleted, testbed.AcceptOldTokens, probes.Strict,
			with(signerKnown, map[string]probes.Outcome{"old-token-rejected": fail})},
		// Rolled back: the functions hold the old secret again, which signs;
		// the rolled-back new one must be refused.
		{"rolled back", journal.ModeMaintenance, journal.PhaseRolledBack, 0, probes.Strict,
			with(signerKnown, map[string]probes.Outcome{"old-token-rejected": pass})},
		// Mid-rotation (backed up, nothing applied): the old secret still
		// signs; the retired one is not judged.
		{"backed up", journal.ModeMaintenance, journal.PhaseBackedUp, 0, probes.Strict, signerKnown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startRig(t, testbed.Options{})
			old, next := r.rotated(t, tc.mode, tc.phase)
			r.w.API.SetMisbehaviours(tc.misbehaviours)
			rep := r.setup(r.secretCreds(), true).Run(t.Context())
			wantOutcomes(t, rep, tc.want)
			if rep.Expect != tc.expect {
				t.Errorf("expect %s, want %s", rep.Expect, tc.expect)
			}
			b, _ := json.Marshal(rep)
			wantNoSecret(t, string(b), string(old.Reveal()), string(next.Reveal()), r.w.ProbePassword)
		})
	}
}

func TestRunDuringGraceUsesOnlyTheJournalledOldSecret(t *testing.T) {
	t.Parallel()
	r := startRig(t, testbed.Options{})
	old, next := r.rotated(t, journal.ModeZeroDowntime, journal.PhaseGrace)
	// Someone overwrote the backup: its previous stage is no longer the
	// secret the journal retired.
	other, _ := rotate.GenerateSecret()
	if err := r.backup.Store(t.Context(), other, next); err != nil {
		t.Fatal(err)
	}
	rep := r.setup(r.secretCreds(), true).Run(t.Context())
	res, ok := rep.Result("old-token-accepted")
	if !ok || res.Outcome != errd || !strings.Contains(res.Reason, old.Fingerprint()) || !strings.Contains(res.Reason, "not in backup") {
		t.Fatalf("old-token-accepted: %s", res.GomegaString())
	}
	if s := report.Successes(rep); s.Percent == 100 {
		t.Error("a grace period that cannot be checked must not look healthy")
	}
}

func TestRunWithRefusedLogin(t *testing.T) {
	t.Parallel()
	r := startRig(t, testbed.Options{})
	r.rotated(t, journal.ModeZeroDowntime, journal.PhaseGrace)
	good := r.w.ProbePassword
	r.putCredentials(t, r.w.ProbeEmail, "not-the-password")
	creds := r.secretCreds()
	s := r.setup(creds, true)
	rep := s.Run(t.Context())
	want := map[string]probes.Outcome{login: fail}
	for name := range with(signerKnown, map[string]probes.Outcome{"old-token-accepted": pass}) {
		if name != login {
			want[name] = skip
		}
	}
	wantOutcomes(t, rep, want)
	var emf bytes.Buffer
	if _, err := report.WriteEMF(&emf, rep, report.EMFOptions{Deployment: "tb"}); err != nil {
		t.Fatal(err)
	}
	lines := map[string]float64{}
	for l := range strings.SplitSeq(strings.TrimSpace(emf.String()), "\n") {
		if err := emfspec.Validate([]byte(l)); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		var doc struct {
			Check          string
			SuccessPercent float64
		}
		_ = json.Unmarshal([]byte(l), &doc)
		lines[doc.Check] = doc.SuccessPercent
	}
	if lines[login] != 0 || lines["all"] != 0 || lines["refresh"] != 0 || len(lines) != len(want)+1 {
		t.Errorf("SuccessPercent by check: %v", lines)
	}
	wantNoSecret(t, emf.String(), "not-the-password", good)

	// The refused login dropped the cached credentials: the corrected
	// password is used at the next run, well within the cache's TTL.
	r.putCredentials(t, r.w.ProbeEmail, good)
	if rep := s.Run(t.Context()); rep.Status() != probes.Pass {
		t.Errorf("after the password was corrected: %s", rep.Status())
	}
}

func TestRunWhenCredentialsCannotBeRead(t *testing.T) {
	t.Parallel()
	r := startRig(t, testbed.Options{})
	cases := map[string]struct {
		creds      proberun.CredentialSource
		wantReason []string
	}{
		"no such secret": {&proberun.SecretCredentials{API: r.sm, SecretID: "valine-probe/missing-" + r.w.Function},
			[]string{"valine-probe/missing-" + r.w.Function, "ResourceNotFound"}},
		"none configured": {nil, []string{"no probe credentials"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rep := r.setup(tc.creds, false).Run(t.Context())
			res, _ := rep.Result(login)
			if res.Outcome != errd {
				t.Fatalf("login %s: %s", res.Outcome, res.Reason)
			}
			for _, w := range tc.wantReason {
				if !strings.Contains(res.Reason, w) {
					t.Errorf("reason %q lacks %q", res.Reason, w)
				}
			}
			if rep.Status() != probes.Error || report.Successes(rep).Percent != 0 {
				t.Errorf("status %s, SuccessPercent %v", rep.Status(), report.Successes(rep).Percent)
			}
			if res, _ := rep.Result("refresh"); res.Outcome != skip {
				t.Errorf("refresh %s", res.Outcome)
			}
		})
	}
}

func TestRunWhenTheAPIIsDown(t *testing.T) {
	t.Parallel()
	r := startRig(t, testbed.Options{Misbehaviours: testbed.Down})
	rep := r.setup(r.secretCreds(), true).Run(t.Context())
	res, _ := rep.Result(login)
	if res.Outcome != errd || !strings.Contains(res.Reason, "unreachable") {
		t.Fatalf("login: %s", res.GomegaString())
	}
	if report.Successes(rep).Percent != 0 {
		t.Error("SuccessPercent is not 0 with the API down")
	}
}

func TestRunWhenTheJournalCannotBeRead(t *testing.T) {
	t.Parallel()
	r := startRig(t, testbed.Options{})
	r.rotated(t, journal.ModeZeroDowntime, journal.PhaseGrace)
	r.w.AWSFront.SetFault(func(req *http.Request) *testbed.Fault {
		if req.Header.Get("X-Amz-Target") == "secretsmanager.DescribeSecret" {
			return &testbed.Fault{Status: 400, ErrorType: "AccessDeniedException", Message: "not authorized to perform secretsmanager:DescribeSecret"}
		}
		return nil
	})
	rep := r.setup(r.secretCreds(), true).Run(t.Context())
	res, _ := rep.Result("new-secret-in-use")
	if res.Outcome != errd || !strings.Contains(res.Reason, "AccessDenied") {
		t.Fatalf("new-secret-in-use: %s", res.GomegaString())
	}
	if o := outcomes(rep); o[login] != pass || o["refresh"] != pass || o["security-hs384-hs512"] != skip {
		t.Errorf("outcomes %v", o)
	}
	if s := report.Successes(rep); s.Percent == 100 || s.PerCheck["security-hs384-hs512"] != 0 {
		t.Errorf("an unreadable journal must show in SuccessPercent: %+v", s)
	}
}

// TestChecksAreTheCatalogs keeps the scheduled run's list in step with
// the catalog.
func TestChecksAreTheCatalogs(t *testing.T) {
	t.Parallel()
	if _, err := probes.Select(probes.Catalog(), append(proberun.Checks, "old-token-accepted", "old-token-rejected")); err != nil {
		t.Fatal(err)
	}
}
