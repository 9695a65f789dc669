package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/emfspec"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// probeWorld is a world in a zero-downtime rotation's grace period, as
// the scheduled probe finds it: the journal and both secrets on the backup
// secret, the probe user's credentials in their own secret.
type probeWorld struct {
	rotatedWorld
	credsID, backup string
	env             []string // AWS and the API; no secret
}

func startProbeWorld(t *testing.T, opts testbed.Options) probeWorld {
	t.Helper()
	rw := startRotated(t, opts, true)
	sm := secretsmanager.NewFromConfig(rw.w.AWS)
	pw := probeWorld{rotatedWorld: rw, credsID: "valine-probe/" + rw.w.Function, backup: "valine-check/" + rw.w.Function}
	b, _ := json.Marshal(map[string]string{"email": rw.w.ProbeEmail, "password": rw.w.ProbePassword})
	if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(pw.credsID), SecretString: aws.String(string(b))}); err != nil {
		t.Fatal(err)
	}
	backup := rotate.Backup{API: sm, Name: pw.backup}
	old, next := secret.NewSecret(rw.old), secret.NewSecret(rw.new)
	if err := backup.Store(t.Context(), old, next); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := backup.WriteJournal(t.Context(), journal.Journal{ID: journal.NewRotationID(now), Mode: journal.ModeZeroDowntime, Phase: journal.PhaseGrace,
		OldFingerprint: old.Fingerprint(), NewFingerprint: next.Fingerprint(), GraceDeadline: now.Add(7 * 24 * time.Hour), StartedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	pw.env = append(awsEnv(rw.w), "VALINE_API_URL="+rw.w.APIURL, "VALINE_PROFILE="+rw.w.Profile.Name, "VALINE_CONVERGENCE=3s")
	return pw
}

// with returns the world's environment plus kv (a new slice each time).
func (pw probeWorld) with(kv ...string) []string { return slices.Concat(pw.env, kv) }

// wantNoSecrets fails if the run printed any secret value or JWT.
func (pw probeWorld) wantNoSecrets(t *testing.T, got cliRun) {
	t.Helper()
	for _, s := range []string{pw.old, pw.new, pw.w.ProbePassword} {
		if strings.Contains(got.stdout+got.stderr, s) {
			t.Errorf("output holds a secret (fingerprint %s)", secret.Fingerprint(s))
		}
	}
	if strings.Contains(got.stdout+got.stderr, "eyJ") {
		t.Error("output holds something shaped like a JWT")
	}
}

func TestProbeEMFIsWhatTheLambdaPrints(t *testing.T) {
	t.Parallel()
	pw := startProbeWorld(t, testbed.Options{})
	env := pw.with("VALINE_PROBE_SECRET_ID="+pw.credsID, "VALINE_BACKUP_SECRET="+pw.backup, "VALINE_DEPLOYMENT=sandbox-prod")
	got := runCLI(t, env, "", "probe", "--emf", "--output", "json")
	if got.code != exitOK {
		t.Fatalf("want exit 0:\n%s", got)
	}
	pw.wantNoSecrets(t, got)
	lines := strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
	var rep probes.Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil || rep.Schema != probes.ReportSchema {
		t.Fatalf("the last line is not the compact JSON report (%v):\n%s", err, got.stdout)
	}
	checks := map[string]float64{}
	for _, l := range lines[:len(lines)-1] {
		if err := emfspec.Validate([]byte(l)); err != nil {
			t.Fatalf("invalid EMF %v: %s", err, l)
		}
		var doc struct {
			Check, Deployment string
			SuccessPercent    float64
		}
		_ = json.Unmarshal([]byte(l), &doc)
		if doc.Deployment != "sandbox-prod" {
			t.Errorf("deployment %q", doc.Deployment)
		}
		checks[doc.Check] = doc.SuccessPercent
	}
	if checks["all"] != 100 || checks["old-token-accepted"] != 100 || len(checks) != len(rep.Results)+1 {
		t.Errorf("SuccessPercent by check: %v", checks)
	}
	if rep.Expect != probes.Grace {
		t.Errorf("expect %s", rep.Expect)
	}
}

func TestProbeExitCodes(t *testing.T) {
	t.Parallel()
	pw := startProbeWorld(t, testbed.Options{})
	secretEnv := pw.with("VALINE_PROBE_SECRET_ID="+pw.credsID, "VALINE_BACKUP_SECRET="+pw.backup)
	passwordEnv := pw.with("VALINE_PROBE_EMAIL="+pw.w.ProbeEmail, "VALINE_PROBE_PASSWORD="+pw.w.ProbePassword)
	cases := []struct {
		name     string
		env      []string
		stdin    string
		args     []string
		wantCode int
		want     []string
	}{
		{"from the secret, with the journal, text and EMF", secretEnv, "", []string{"probe", "--emf", "--deployment", "d"}, exitOK,
			[]string{`"Check":"all","SuccessPercent":100`, "PASS  old-token-accepted", "expect grace"}},
		{"password from the environment, no journal", passwordEnv, "", []string{"probe"}, exitOK,
			[]string{"PASS  login", "SKIP  new-secret-in-use", "no backup secret configured"}},
		{"password on stdin", pw.with("VALINE_PROBE_EMAIL=" + pw.w.ProbeEmail), "VALINE_PROBE_PASSWORD=" + pw.w.ProbePassword + "\n",
			[]string{"probe", "--env-stdin"}, exitOK, []string{"PASS  login"}},
		{"wrong password", pw.with("VALINE_PROBE_EMAIL="+pw.w.ProbeEmail, "VALINE_PROBE_PASSWORD=not-it"), "", []string{"probe", "--emf", "--deployment", "d"}, exitFailed,
			[]string{"FAIL  login", `"Check":"login","SuccessPercent":0`, `"Check":"refresh","SuccessPercent":0`, "failed: login"}},
		{"missing credentials secret", pw.with("VALINE_PROBE_SECRET_ID=valine-probe/none-" + pw.w.Function), "", []string{"probe"}, exitEnvError,
			[]string{"ERROR  login", "valine-probe/none-"}},
		{"--emf without a deployment", secretEnv, "", []string{"probe", "--emf"}, exitUsage, []string{"--deployment"}},
		{"no credentials", pw.env, "", []string{"probe"}, exitUsage, []string{"--probe-secret-id"}},
		{"no API", awsEnv(pw.w), "", []string{"probe", "--probe-secret-id", pw.credsID}, exitUsage, []string{"--api-url"}},
		{"--function is not a probe flag", secretEnv, "", []string{"probe", "--function", "f"}, exitUsage, []string{"flag provided but not defined"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := runCLI(t, tc.env, tc.stdin, tc.args...)
			if got.code != tc.wantCode {
				t.Fatalf("want exit %d:\n%s", tc.wantCode, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got.stdout+got.stderr, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			pw.wantNoSecrets(t, got)
		})
	}
}

func TestProbeWithTheAPIDown(t *testing.T) {
	t.Parallel()
	pw := startProbeWorld(t, testbed.Options{})
	pw.w.API.SetMisbehaviours(testbed.Down)
	got := runCLI(t, pw.with("VALINE_PROBE_SECRET_ID="+pw.credsID), "", "probe", "--emf", "--deployment", "d")
	if got.code != exitEnvError || !strings.Contains(got.stdout, `"Check":"all","SuccessPercent":0`) {
		t.Fatalf("want exit 3 and SuccessPercent 0:\n%s", got)
	}
}
