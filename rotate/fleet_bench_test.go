package rotate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// The fleet benchmark runs on a testbed that behaves as AWS Lambda does
// (issue 11): each update stays in progress for fleetUpdateDuration and a
// second update meanwhile is refused, and the account has Lambda's real
// request-rate quotas (15 control-plane and 100 GetFunction requests a
// second; over them 429). It measures only what the world saw, so that it
// runs unchanged against an earlier engine (see BENCHMARKS.md for the
// side-by-side command).
const (
	fleetUpdateDuration = 1500 * time.Millisecond
	// fleetAWSLatency is added to every AWS request of the engine and its
	// verifier: an in-region call.
	fleetAWSLatency = 25 * time.Millisecond
	// fleetEnvVars is the real stack's environment: 56 variables, the
	// secret among them, about 3 KB.
	fleetEnvVars = 56
	// lambdaControlQuota is the account's control-plane requests a second.
	lambdaControlQuota = 15
)

// BenchmarkFleetRotation rotates fleets of 1, 10, 77 (the real stack) and
// 200 functions in maintenance and emergency mode, each iteration one
// whole rotation (plan, baseline, backup, journal, the fleet's updates,
// the strict verification). It reports per rotation, as medians:
//
//   - wall-s: the rotation's wall time;
//   - split-s: the drift window, from the first function serving the new
//     secret to the last, as the testbed saw the updates finish;
//   - control, getfunction: Lambda requests by quota class; throttled: the
//     429s the account's quotas answered;
//   - floor-s: the fleet's floor, its least control-plane requests (one
//     update per function and the listing's pages) / 15 + one update
//     duration + the fixed steps (the wall time outside the fleet's
//     update, which the audit trail bounds: from the journal's "applied"
//     step to the engine's "update" record), and wall/floor;
//   - updates: UpdateFunctionConfiguration requests accepted.
//
// The fleet's first rotation (which also claims the fleet and creates the
// backup) is not counted. VALINE_BENCH_FLEETS (e.g. "77,200") picks the
// fleets:
//
//	go test -run '^$' -bench FleetRotation -benchtime 3x -timeout 60m ./rotate
func BenchmarkFleetRotation(b *testing.B) {
	fleets := []int{1, 10, 77, 200}
	if v := os.Getenv("VALINE_BENCH_FLEETS"); v != "" {
		fleets = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("VALINE_BENCH_FLEETS=%q: %q is not a fleet size", v, f)
			}
			fleets = append(fleets, n)
		}
	}
	for _, n := range fleets {
		for _, mode := range []journal.Mode{journal.ModeMaintenance, journal.ModeEmergency} {
			b.Run(fmt.Sprintf("fleet=%d/mode=%s", n, mode), func(b *testing.B) { benchmarkFleetRotation(b, n, mode) })
		}
	}
}

// fleetEnv is the other variables of the real stack's shared environment:
// with the testbed's four defaults and the secret, fleetEnvVars in all,
// about 3 KB.
func fleetEnv() map[string]string {
	env := map[string]string{}
	for i := range fleetEnvVars - 5 {
		env[fmt.Sprintf("VALINE_SETTING_%02d", i)] = fmt.Sprintf("https://svc-%02d.valine.internal", i)
	}
	return env
}

type fleetSample struct {
	wall, split, floor       time.Duration
	control, getFn, throttle int
	updates                  int
}

func benchmarkFleetRotation(b *testing.B, n int, mode journal.Mode) {
	ctx := context.Background()
	roles := []string{"auth"}
	for i := 1; i < n; i++ {
		roles = append(roles, fmt.Sprintf("fn%03d", i))
	}
	prefix, fns := fleetNames("bench-"+string(mode[:4]), roles...)
	w, err := testbed.Start(ctx, testbed.Options{
		Functions:      fns,
		ExtraEnv:       fleetEnv(),
		UpdateDuration: fleetUpdateDuration,
		LambdaQuotas:   &testbed.LambdaQuotas{},
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if env, _, err := w.Env(ctx, w.Function); err == nil {
		size, _ := json.Marshal(env)
		b.Logf("%d functions, %d variables (%d bytes) each", n, len(env), len(size))
	}
	w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
		if testbed.FromTestbedAPI(r) || strings.Contains(r.Header.Get("User-Agent"), "valine-testbed-world") {
			return nil
		}
		return &testbed.Fault{Delay: fleetAWSLatency}
	})
	defer w.AWSFront.SetFault(nil)

	// The command's retry policy (cmd/valine-check/aws.go): 8 attempts,
	// backing off up to 20 s, on throttling and 5xx.
	cfg := w.AWS.Copy()
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts, o.MaxBackoff = 8, 20*time.Second })
	}
	client := lambda.NewFromConfig(cfg)
	rotateOnce := func() fleetSample {
		stats, since, pages := w.AWSFront.LambdaQuotaStats(), time.Now(), w.AWSFront.ClientCalls("lambda:ListFunctions")
		start := time.Now()
		// One run of the command: the fleet chosen by prefix, then the engine.
		fleet, err := rotate.ResolveFleet(ctx, client, rotate.Selector{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		auditPath := b.TempDir() + "/audit.jsonl"
		e := &rotate.Engine{
			Audit:   &rotate.AuditLog{Path: auditPath},
			Lambda:  client,
			Backup:  rotate.Backup{API: secretsmanager.NewFromConfig(cfg), Name: "valine-check/" + w.Function},
			Profile: w.Profile,
			Fleet:   fleet,
			Verifier: rotate.ProbeVerifier{
				Target: probes.Target{API: &probes.Client{BaseURL: w.APIURL, Profile: w.Profile},
					Function: w.Function, Logs: cloudwatchlogs.NewFromConfig(cfg)},
				Config: probes.Config{ProbeEmail: w.ProbeEmail, ProbePassword: secret.NewSecret(w.ProbePassword)},
				Runner: probes.Runner{Convergence: 10 * time.Second, RetryInterval: 50 * time.Millisecond},
			},
		}
		out, err := e.Rotate(ctx, mode, rotate.RotateOptions{})
		wall := time.Since(start)
		if err != nil || out.Journal.Phase != journal.PhaseCompleted {
			b.Fatalf("rotation of %d functions ended in phase %s after %s: %v", n, out.Journal.Phase, wall.Round(time.Millisecond), err)
		}
		after := w.AWSFront.LambdaQuotaStats()
		s := fleetSample{wall: wall, control: after.Control - stats.Control, getFn: after.GetFunction - stats.GetFunction,
			throttle: after.Throttled - stats.Throttled}
		updates := w.AWSFront.LambdaUpdates(since)
		s.updates = len(updates)
		if len(updates) > 0 {
			first, last := updates[0].Done, updates[0].Done
			for _, u := range updates {
				first, last = minTime(first, u.Done), maxTime(last, u.Done)
			}
			s.split = last.Sub(first)
		}
		// The fixed steps are the wall time outside the fleet's update: from
		// the journal's "applied" (just before the first write) to the
		// engine's "update" record (every function done and checked).
		applying := fleetUpdateSpan(b, auditPath, out.Journal.ID)
		pages = w.AWSFront.ClientCalls("lambda:ListFunctions") - pages
		s.floor = time.Duration(float64(n+pages)/lambdaControlQuota*float64(time.Second)) + fleetUpdateDuration + wall - applying
		return s
	}
	rotateOnce() // claims the fleet and creates the backup: not counted

	var samples []fleetSample
	for b.Loop() {
		samples = append(samples, rotateOnce())
	}
	med := func(f func(fleetSample) float64) float64 {
		vs := make([]float64, len(samples))
		for i, s := range samples {
			vs[i] = f(s)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	b.ReportMetric(med(func(s fleetSample) float64 { return s.wall.Seconds() }), "wall-s")
	b.ReportMetric(med(func(s fleetSample) float64 { return s.split.Seconds() }), "split-s")
	b.ReportMetric(med(func(s fleetSample) float64 { return s.floor.Seconds() }), "floor-s")
	b.ReportMetric(med(func(s fleetSample) float64 { return s.wall.Seconds() / s.floor.Seconds() }), "wall/floor")
	b.ReportMetric(med(func(s fleetSample) float64 { return float64(s.control) }), "control")
	b.ReportMetric(med(func(s fleetSample) float64 { return float64(s.getFn) }), "getfunction")
	b.ReportMetric(med(func(s fleetSample) float64 { return float64(s.throttle) }), "throttled")
	b.ReportMetric(med(func(s fleetSample) float64 { return float64(s.updates) }), "updates")
	b.ReportMetric(0, "ns/op") // the wall time is wall-s, a median
}

// fleetUpdateSpan reads the audit file of one rotation and returns how long
// its fleet update took: from the "applied" step (journalled just before
// the first write) to the "update" record (written once every function is
// done).
func fleetUpdateSpan(b *testing.B, path, id string) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var applied, updated time.Time
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec rotate.AuditRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			b.Fatalf("audit line %q: %v", line, err)
		}
		switch {
		case rec.RotationID != id:
		case rec.Step == string(journal.PhaseApplied):
			applied = rec.Time
		case rec.Step == "update" && !applied.IsZero() && updated.IsZero():
			updated = rec.Time
		}
	}
	if applied.IsZero() || updated.IsZero() {
		b.Fatalf("rotation %s: no applied step and update record in the audit", id)
	}
	return updated.Sub(applied)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
