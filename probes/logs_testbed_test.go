package probes_test

import (
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// The log check reads the function's log group between LogsSince and
// LogsUntil: it skips without a function, warns on a window with no
// verification at all, fails with counts and reasons when verifications
// failed in the window, and passes otherwise. Lines outside the window do
// not count.
func TestNoLogErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// window sets the config's window and makes the traffic around it.
		window  func(t *testing.T, r *rig)
		want    probes.Outcome
		reason  []string
		reasons map[string]int // the failures counted, by reason
	}{
		{
			name: "no function",
			window: func(t *testing.T, r *rig) {
				r.target.Function = ""
				r.cfg.LogsSince = time.Now()
			},
			want: probes.Skip, reason: []string{"VALINE_FUNCTION"},
		},
		{
			name: "no logs client",
			window: func(t *testing.T, r *rig) {
				r.target.Logs = nil
				r.cfg.LogsSince = time.Now()
			},
			want: probes.Skip, reason: []string{"VALINE_FUNCTION"},
		},
		{
			name:   "no start time",
			window: func(t *testing.T, r *rig) { simulateUsers(t, r, 1) },
			want:   probes.Skip, reason: []string{"--since"},
		},
		{
			// Traffic now, failures included, but the window is an hour ago:
			// silence there is not health.
			name: "window without verification lines",
			window: func(t *testing.T, r *rig) {
				simulateUsers(t, r, 1)
				badRequests(t, r, 1, 0)
				r.cfg.LogsSince = time.Now().Add(-2 * time.Hour)
				r.cfg.LogsUntil = time.Now().Add(-time.Hour)
			},
			want: probes.Warn, reason: []string{"no JWT verification lines", "/aws/lambda/"},
		},
		{
			name: "failures in the window",
			window: func(t *testing.T, r *rig) {
				badRequests(t, r, 1, 0) // before the window
				r.cfg.LogsSince = testbed.NextLogMillisecond()
				simulateUsers(t, r, 1)
				badRequests(t, r, 2, 1)
				r.cfg.LogsUntil = testbed.NextLogMillisecond()
				badRequests(t, r, 1, 0) // after it
			},
			want:    probes.Fail,
			reason:  []string{"3 failed JWT verification(s)", "2× signature is invalid", "1× missing token"},
			reasons: map[string]int{"signature is invalid": 2, "missing token": 1},
		},
		{
			// More than a page of FilterLogEvents (AWS and the testbed
			// answer 50 events a page by default): every page is counted.
			name: "120 failures, three pages of them",
			window: func(t *testing.T, r *rig) {
				r.cfg.LogsSince = testbed.NextLogMillisecond()
				simulateUsers(t, r, 1)
				badRequests(t, r, 120, 0)
				r.cfg.LogsUntil = testbed.NextLogMillisecond()
			},
			want:    probes.Fail,
			reason:  []string{"120 failed JWT verification(s)", "120× signature is invalid"},
			reasons: map[string]int{"signature is invalid": 120},
		},
		{
			name: "clean window between failures",
			window: func(t *testing.T, r *rig) {
				badRequests(t, r, 1, 0)
				r.cfg.LogsSince = testbed.NextLogMillisecond()
				simulateUsers(t, r, 2)
				r.cfg.LogsUntil = testbed.NextLogMillisecond()
				badRequests(t, r, 1, 0)
			},
			want: probes.Pass, reason: []string{"no failed JWT verifications"}, reasons: map[string]int{},
		},
		{
			// An earlier probe run's deliberate rejections (old token,
			// security battery) are in the window, carrying that run's own
			// random marker: where the API logs the User-Agent they are
			// known as the probe's, and not counted.
			name: "earlier probe run in the window",
			window: func(t *testing.T, r *rig) {
				r.cfg.LogsSince = testbed.NextLogMillisecond()
				simulateUsers(t, r, 1)
				r.rotate(t, probes.Strict)
				if rep := r.run(t, fastRunner()); rep.Status() != probes.Pass {
					t.Fatalf("earlier run: %s", rep.Status())
				}
				r.cfg.LogsUntil = testbed.NextLogMillisecond()
			},
			want: probes.Pass, reasons: map[string]int{},
		},
		{
			// LogsUntil left zero ends the window at the start of the run.
			name: "clean window up to the run",
			window: func(t *testing.T, r *rig) {
				badRequests(t, r, 1, 0)
				r.cfg.LogsSince = testbed.NextLogMillisecond()
				simulateUsers(t, r, 2)
				testbed.NextLogMillisecond() // the users' lines must not share the run's first millisecond
			},
			want: probes.Pass, reasons: map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := baseRig(t, testbed.Options{}, probes.Strict)
			tt.window(t, r)
			rep := r.runOnly(t, fastRunner(), "no-log-errors")
			res := mustResult(t, rep, "no-log-errors")
			if res.Outcome != tt.want {
				t.Fatalf("no-log-errors: %s, want %s: %s", res.Outcome, tt.want, res.Reason)
			}
			wantReason(t, res, tt.reason...)
			if tt.reasons == nil {
				return
			}
			want := 0
			for _, n := range tt.reasons {
				want += n
			}
			if got, _ := res.Details["failures"].(int); got != want {
				t.Errorf("details failures = %v, want %d", res.Details["failures"], want)
			}
			got, _ := res.Details["reasons"].(map[string]int)
			if len(tt.reasons) > 0 && !maps.Equal(got, tt.reasons) {
				t.Errorf("details reasons = %v, want %v", res.Details["reasons"], tt.reasons)
			}
			if sample, _ := res.Details["sample"].([]string); len(tt.reasons) > 0 && len(sample) == 0 {
				t.Errorf("a failure carries no sample of the failed lines")
			}
		})
	}
}

// simulateUsers makes n ordinary users log in and use the API.
func simulateUsers(t *testing.T, r *rig, n int) {
	t.Helper()
	if err := r.w.SimulateUsers(t.Context(), n); err != nil {
		t.Fatalf("SimulateUsers: %v", err)
	}
}

// badRequests sends the profile endpoint `tampered` tokens with a tampered
// signature and `missing` requests without a token, as a broken client would
// (not marked as the probe's deliberate attacks), and requires each to be
// refused.
func badRequests(t *testing.T, r *rig, tampered, missing int) {
	t.Helper()
	ctx := t.Context()
	c := r.target.API
	s, err := c.Login(ctx, r.w.ProbeEmail, secret.NewSecret(r.w.ProbePassword))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	bad, err := probes.TamperedSignature(s.Access)
	if err != nil {
		t.Fatalf("TamperedSignature: %v", err)
	}
	var toks []secret.Token
	for range tampered {
		toks = append(toks, bad)
	}
	for range missing {
		toks = append(toks, secret.Token{})
	}
	for _, tok := range toks {
		resp, err := c.Me(ctx, tok)
		if err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("bad request: %+v, %v; want HTTP 401", resp, err)
		}
	}
}

// A run that reads its window to its own end (as a rotation's verification
// does) leaves out its own deliberate rejections, and only those.
func TestNoLogErrorsThroughTheRunLeavesOutItsOwnRejections(t *testing.T) {
	t.Parallel()
	r := baseRig(t, testbed.Options{}, probes.Strict)
	r.cfg.LogsSince = testbed.NextLogMillisecond()
	simulateUsers(t, r, 1)
	r.rotate(t, probes.Strict)
	r.cfg.LogsThroughRun = true
	rep := r.run(t, fastRunner())
	res := mustResult(t, rep, "no-log-errors")
	if res.Outcome != probes.Pass || res.Details["failures"] != 0 {
		t.Fatalf("no-log-errors: %s %v: %s", res.Outcome, res.Details, res.Reason)
	}
	if n, _ := res.Details["probeRejectionsIgnored"].(int); n < 8 {
		t.Errorf("%d deliberate rejections left out; the strict run sends at least 8", n)
	}
}
