package probes_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// BenchmarkAfterRotation measures the runner against a testbed API that
// answers every request 50 ms late, the strict after-rotation run with
// every check: its wall time with the default concurrency against the same
// run with one check at a time (what the sum of the checks' durations
// costs), measured side by side in each iteration. It reports the medians
// and their ratio (target: at most 0.35).
//
//	go test -run '^$' -bench AfterRotation -benchtime 10x ./probes
func BenchmarkAfterRotation(b *testing.B) {
	ctx := context.Background()
	w, err := testbed.Start(ctx, testbed.Options{Latency: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	next, err := rotate.GenerateSecret()
	if err != nil {
		b.Fatal(err)
	}
	if err := w.SetSecrets(ctx, string(next.Reveal()), ""); err != nil {
		b.Fatal(err)
	}
	target := probes.Target{
		API:      &probes.Client{BaseURL: w.APIURL, Profile: w.Profile},
		Function: w.Function,
		Logs:     cloudwatchlogs.NewFromConfig(w.AWS),
	}
	cfg := probes.Config{
		Expect: probes.Strict, ProbeEmail: w.ProbeEmail, ProbePassword: secret.NewSecret(w.ProbePassword),
		OldSecret: secret.NewSecret(w.InitialSecret()), CurrentSecret: next, LogsSince: time.Now().Add(-time.Minute),
	}
	checks := probes.ForExpect(probes.Catalog(), probes.Strict)
	run := func(r probes.Runner) time.Duration {
		rep := r.Run(ctx, checks, target, cfg)
		if rep.Summary.Failed+rep.Summary.Errored > 0 {
			b.Fatalf("run did not pass: %+v", rep.Summary)
		}
		return rep.Duration
	}
	var concurrent, sequential []time.Duration
	var sums []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		concurrent = append(concurrent, run(probes.Runner{}))
		b.StopTimer()
		rep := probes.Runner{Concurrency: 1}.Run(ctx, checks, target, cfg)
		sequential = append(sequential, rep.Duration)
		sums = append(sums, rep.ChecksTotal())
		b.StartTimer()
	}
	mc, ms, msum := median(concurrent), median(sequential), median(sums)
	b.ReportMetric(float64(mc.Milliseconds()), "concurrent-ms")
	b.ReportMetric(float64(ms.Milliseconds()), "sequential-ms")
	b.ReportMetric(float64(msum.Milliseconds()), "checks-sum-ms")
	b.ReportMetric(float64(mc)/float64(ms), "ratio")
	b.ReportMetric(float64(w.API.Requests())/float64(2*b.N), "api-requests/run")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkBaseline measures what the baseline a rotation runs before its
// first write costs (login, new-token-valid, refresh and the security
// battery, concurrently), against a testbed API that answers every
// request 50 ms late: its wall time beside a lone login and beside the
// same checks one at a time, side by side in each iteration. It reports
// the medians and the ratios.
//
//	go test -run '^$' -bench Baseline -benchtime 10x ./probes
func BenchmarkBaseline(b *testing.B) {
	ctx := context.Background()
	w, err := testbed.Start(ctx, testbed.Options{Latency: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	target := probes.Target{API: &probes.Client{BaseURL: w.APIURL, Profile: w.Profile}}
	cfg := probes.Config{Expect: probes.Strict, ProbeEmail: w.ProbeEmail, ProbePassword: secret.NewSecret(w.ProbePassword),
		CurrentSecret: secret.NewSecret(w.InitialSecret())}
	login, _ := probes.CatalogCheck("login")
	checks := probes.BaselineChecks()
	var base, lone, seq []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep := probes.Runner{}.Run(ctx, checks, target, cfg)
		if rep.Summary.Failed+rep.Summary.Errored > 0 {
			b.Fatalf("baseline did not pass: %+v", rep.Summary)
		}
		base = append(base, rep.Duration)
		b.StopTimer()
		lone = append(lone, probes.Runner{}.Run(ctx, []probes.Check{login}, target, cfg).Duration)
		seq = append(seq, probes.Runner{Concurrency: 1}.Run(ctx, checks, target, cfg).Duration)
		b.StartTimer()
	}
	mb, ml, ms := median(base), median(lone), median(seq)
	b.ReportMetric(float64(mb.Milliseconds()), "baseline-ms")
	b.ReportMetric(float64(ml.Milliseconds()), "login-ms")
	b.ReportMetric(float64(ms.Milliseconds()), "one-at-a-time-ms")
	b.ReportMetric(float64(mb)/float64(ml), "baseline/login")
	b.ReportMetric(float64(mb)/float64(ms), "baseline/one-at-a-time")
}
