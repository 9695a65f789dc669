package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/emfspec"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// lambdaRig is a testbed world set up as a deployed probe finds it: the
// probe user's credentials in Secrets Manager, the function's config
// pointing at the world.
type lambdaRig struct {
	w       *testbed.World
	sm      *secretsmanager.Client
	cfg     config
	secrets []string // every secret value in play, for the leak check
}

func startLambdaRig(t *testing.T, opts testbed.Options) *lambdaRig {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := testbed.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	r := &lambdaRig{w: w, sm: secretsmanager.NewFromConfig(w.AWS)}
	m := validEnv()
	m[envAPIURL] = w.APIURL
	m[envProfile] = w.Profile.Name
	m[envDeployment] = "testbed-" + w.Function
	m[envProbeSecretID] = "valine-probe/" + w.Function
	m[envBackupSecret] = "valine-check/" + w.Function
	m[envConvergence] = "300ms"
	if r.cfg, err = configFromEnv(env(m)); err != nil {
		t.Fatal(err)
	}
	r.putCredentials(t, w.ProbePassword)
	r.secrets = []string{w.ProbePassword, w.InitialSecret()}
	return r
}

func (r *lambdaRig) putCredentials(t *testing.T, password string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": r.w.ProbeEmail, "password": password})
	r.secrets = append(r.secrets, password)
	_, err := r.sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(r.cfg.probeSecretID), SecretString: aws.String(string(b))})
	if err != nil {
		t.Fatalf("storing the probe credentials: %v", err)
	}
}

// grace puts the world in a zero-downtime rotation's grace period, as the
// engine leaves it: new primary, old secondary, both in the backup, the
// journal saying grace.
func (r *lambdaRig) grace(t *testing.T) {
	t.Helper()
	old := secret.NewSecret(r.w.InitialSecret())
	next, err := rotate.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	r.secrets = append(r.secrets, string(next.Reveal()))
	b := rotate.Backup{API: r.sm, Name: r.cfg.backupSecret}
	if err := b.Store(t.Context(), old, next); err != nil {
		t.Fatal(err)
	}
	if err := r.w.SetSecrets(t.Context(), string(next.Reveal()), string(old.Reveal())); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := b.WriteJournal(t.Context(), journal.Journal{ID: journal.NewRotationID(now), Mode: journal.ModeZeroDowntime,
		Phase: journal.PhaseGrace, OldFingerprint: old.Fingerprint(), NewFingerprint: next.Fingerprint(),
		GraceDeadline: now.Add(7 * 24 * time.Hour), StartedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// invocation is what one invocation printed.
type invocation struct {
	emf    map[string]map[string]any // EMF documents by Check
	report probes.Report
	stdout string
	stderr string
}

// invoke runs the handler once, in-process, as the Lambda runtime would
// (a scheduled event, a deadline), and parses stdout: every line but the
// last must be a valid EMF document; the last is the JSON report.
func (r *lambdaRig) invoke(t *testing.T) invocation {
	t.Helper()
	var stdout, stderr syncBuffer
	h := newHandler(newDeps(r.cfg, r.w.AWS, &stdout, &stderr))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ev := events.CloudWatchEvent{ID: "e-1", DetailType: "Scheduled Event", Source: "aws.events", Time: time.Now(), Detail: json.RawMessage(`{}`)}
	if err := h(ctx, ev); err != nil {
		t.Fatalf("the handler returned %v; it must return nil whatever the API does", err)
	}
	inv := invocation{emf: map[string]map[string]any{}, stdout: stdout.String(), stderr: stderr.String()}
	lines := strings.Split(strings.TrimSuffix(inv.stdout, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("stdout has %d lines:\n%s", len(lines), inv.stdout)
	}
	for _, l := range lines[:len(lines)-1] {
		if err := emfspec.Validate([]byte(l)); err != nil {
			t.Fatalf("invalid EMF: %v\n%s", err, l)
		}
		var doc map[string]any
		_ = json.Unmarshal([]byte(l), &doc)
		inv.emf[doc["Check"].(string)] = doc
	}
	last := lines[len(lines)-1]
	if err := json.Unmarshal([]byte(last), &inv.report); err != nil || inv.report.Schema != probes.ReportSchema {
		t.Fatalf("the last line is not the JSON report (%v):\n%s", err, last)
	}
	for _, s := range r.secrets {
		if strings.Contains(inv.stdout+inv.stderr, s) {
			t.Errorf("the output holds a secret value (fingerprint %s)", secret.Fingerprint(s))
		}
	}
	if strings.Contains(inv.stdout+inv.stderr, "eyJ") {
		t.Error("the output holds something shaped like a JWT")
	}
	return inv
}

func (inv invocation) percent(t *testing.T, check string) float64 {
	t.Helper()
	doc, ok := inv.emf[check]
	if !ok {
		t.Fatalf("no EMF line for %s:\n%s", check, inv.stdout)
	}
	return doc["SuccessPercent"].(float64)
}

func TestHandlerDuringGrace(t *testing.T) {
	t.Parallel()
	r := startLambdaRig(t, testbed.Options{})
	r.grace(t)
	inv := r.invoke(t)
	if inv.report.Status() != probes.Pass || inv.report.Expect != probes.Grace {
		t.Fatalf("status %s, expect %s:\n%s", inv.report.Status(), inv.report.Expect, inv.stdout)
	}
	if res, ok := inv.report.Result("old-token-accepted"); !ok || res.Outcome != probes.Pass {
		t.Errorf("old-token-accepted: %+v", res)
	}
	if inv.percent(t, "all") != 100 || inv.percent(t, "old-token-accepted") != 100 || inv.percent(t, "security-hs384-hs512") != 100 {
		t.Errorf("percents: %s", inv.stdout)
	}
	// One line per check that ran, and the overall one.
	if len(inv.emf) != len(inv.report.Results)+1 {
		t.Errorf("%d EMF lines for %d checks", len(inv.emf), len(inv.report.Results))
	}
	for check, doc := range inv.emf {
		if doc["Deployment"] != r.cfg.deployment || doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Namespace"] != "Valine/Probe" {
			t.Errorf("%s: deployment %v", check, doc["Deployment"])
		}
	}
	if !strings.Contains(inv.stderr, `"phase":"grace"`) {
		t.Errorf("no journal line on stderr:\n%s", inv.stderr)
	}
}

func TestHandlerWhenTheLoginIsRefused(t *testing.T) {
	t.Parallel()
	r := startLambdaRig(t, testbed.Options{})
	// A wrong password in the credentials secret: the API refuses the login.
	if _, err := r.sm.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(r.cfg.probeSecretID),
		SecretString: aws.String(`{"email":"` + r.w.ProbeEmail + `","password":"wrong-password-1"}`)}); err != nil {
		t.Fatal(err)
	}
	r.secrets = append(r.secrets, "wrong-password-1")
	inv := r.invoke(t)
	if got := inv.percent(t, "login"); got != 0 {
		t.Errorf("login SuccessPercent %v", got)
	}
	if got := inv.percent(t, "all"); got != 0 {
		t.Errorf("overall SuccessPercent %v", got)
	}
	for _, res := range inv.report.Results {
		if res.Name != "login" && res.Outcome != probes.Skip {
			t.Errorf("%s: %s, want skip (it needs the login)", res.Name, res.Outcome)
		}
	}
	if inv.percent(t, "refresh") != 0 || inv.emf["refresh"]["Outcome"] != "skip" {
		t.Errorf("refresh: a check skipped for a failed login is not a success: %v", inv.emf["refresh"])
	}
}

func TestHandlerWhenTheAPIIsDown(t *testing.T) {
	t.Parallel()
	r := startLambdaRig(t, testbed.Options{Misbehaviours: testbed.Down})
	inv := r.invoke(t)
	if inv.report.Status() != probes.Error || inv.percent(t, "all") != 0 || inv.percent(t, "login") != 0 {
		t.Errorf("status %s:\n%s", inv.report.Status(), inv.stdout)
	}
}

func TestHandlerWhenTheCredentialsSecretIsMissing(t *testing.T) {
	t.Parallel()
	r := startLambdaRig(t, testbed.Options{})
	r.cfg.probeSecretID = "valine-probe/nobody-" + r.w.Function
	inv := r.invoke(t)
	res, _ := inv.report.Result("login")
	if res.Outcome != probes.Error || !strings.Contains(res.Reason, r.cfg.probeSecretID) || inv.percent(t, "all") != 0 {
		t.Errorf("login: %s", res.GomegaString())
	}
}

// The handler keeps a margin before the invocation's deadline, so the
// metrics are written even when the API hangs.
func TestHandlerWritesMetricsBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	r := startLambdaRig(t, testbed.Options{Latency: 10 * time.Second})
	var stdout, stderr syncBuffer
	d := newDeps(r.cfg, r.w.AWS, &stdout, &stderr)
	d.margin = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	if err := newHandler(d)(ctx, events.CloudWatchEvent{}); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the handler ran past the invocation's deadline")
	}
	if !strings.Contains(stdout.String(), `"Check":"all","SuccessPercent":0`) {
		t.Errorf("no overall metric:\n%s", stdout.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the runner's concurrent loggers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
