package probes_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// fastRunner is the runner of these tests: a world without a propagation
// delay converges at once, so a check that waits for propagation and still
// fails after 300 ms never will.
func fastRunner() probes.Runner {
	return probes.Runner{CheckTimeout: 2 * time.Second, Convergence: 300 * time.Millisecond, RetryInterval: 20 * time.Millisecond}
}

// startWorld starts a local world and closes it with the test.
func startWorld(t *testing.T, opts testbed.Options) *testbed.World {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := testbed.Start(ctx, opts)
	if err != nil {
		t.Fatalf("testbed.Start: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

// generateSecret returns a fresh secret, as the rotate command makes one.
func generateSecret(t *testing.T) secret.Secret {
	t.Helper()
	s, err := rotate.GenerateSecret()
	if err != nil {
		t.Fatalf("GenerateSecret: %v", err)
	}
	return s
}

// rig is a world after a rotation and what a run against it needs.
type rig struct {
	w        *testbed.World
	old, cur secret.Secret
	target   probes.Target
	cfg      probes.Config
}

// client returns a probes client for the world's API.
func client(w *testbed.World) *probes.Client {
	return &probes.Client{BaseURL: w.APIURL, Profile: w.Profile}
}

// baseRig starts a world and fills in the target and the probe user's
// credentials; nothing is rotated yet.
func baseRig(t *testing.T, opts testbed.Options, expect probes.Expect) *rig {
	t.Helper()
	w := startWorld(t, opts)
	return &rig{
		w:   w,
		old: secret.NewSecret(w.InitialSecret()),
		target: probes.Target{
			API:      client(w),
			Function: w.Function,
			Logs:     cloudwatchlogs.NewFromConfig(w.AWS),
		},
		cfg: probes.Config{
			Expect:        expect,
			ProbeEmail:    w.ProbeEmail,
			ProbePassword: secret.NewSecret(w.ProbePassword),
		},
	}
}

// rotatedRig starts a world and rotates it the way expect assumes: strict
// replaces the secret (no secondary), grace keeps the old one as the
// secondary. The log window starts before the rotation, and a few users log
// in after it, so the window holds successful verifications. The config
// carries the old and the current secret.
func rotatedRig(t *testing.T, opts testbed.Options, expect probes.Expect) *rig {
	t.Helper()
	r := baseRig(t, opts, expect)
	r.cfg.LogsSince = time.Now()
	// The window starts at the next whole millisecond: whatever is logged in
	// this one is not in it.
	testbed.NextLogMillisecond()
	r.rotate(t, expect)
	if err := r.w.SimulateUsers(t.Context(), 3); err != nil {
		t.Fatalf("SimulateUsers: %v", err)
	}
	return r
}

// rotate puts a new secret in force, keeping the old one as the secondary
// for grace, and records both in the config.
func (r *rig) rotate(t *testing.T, expect probes.Expect) {
	t.Helper()
	r.cur = generateSecret(t)
	secondary := ""
	if expect == probes.Grace {
		secondary = string(r.old.Reveal())
	}
	if err := r.w.SetSecrets(t.Context(), string(r.cur.Reveal()), secondary); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	r.cfg.OldSecret, r.cfg.CurrentSecret = r.old, r.cur
}

// run runs the catalog's checks for the config's expectation.
func (r *rig) run(t *testing.T, runner probes.Runner) probes.Report {
	t.Helper()
	return runner.Run(t.Context(), probes.ForExpect(probes.Catalog(), r.cfg.Expect), r.target, r.cfg)
}

// runOnly runs the named checks (and what they need).
func (r *rig) runOnly(t *testing.T, runner probes.Runner, names ...string) probes.Report {
	t.Helper()
	checks, err := probes.Select(probes.ForExpect(probes.Catalog(), r.cfg.Expect), names)
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	return runner.Run(t.Context(), checks, r.target, r.cfg)
}

// mustResult returns the named check's result, failing the test if it did not run.
func mustResult(t *testing.T, rep probes.Report, name string) probes.Result {
	t.Helper()
	r, ok := rep.Result(name)
	if !ok {
		t.Fatalf("check %s did not run; ran %v", name, names(rep))
	}
	return r
}

// names lists the report's check names.
func names(rep probes.Report) []string {
	out := make([]string, 0, len(rep.Results))
	for _, r := range rep.Results {
		out = append(out, r.Name)
	}
	return out
}

// wantOutcomes checks every result of the report: the named ones against
// want, all the others against rest. Every name in want must have run.
func wantOutcomes(t *testing.T, rep probes.Report, want map[string]probes.Outcome, rest probes.Outcome) {
	t.Helper()
	for name := range want {
		if _, ok := rep.Result(name); !ok {
			t.Errorf("check %s did not run; ran %v", name, names(rep))
		}
	}
	for _, r := range rep.Results {
		w, ok := want[r.Name]
		if !ok {
			w = rest
		}
		if r.Outcome != w {
			t.Errorf("%s: %s, want %s: %s", r.Name, r.Outcome, w, r.Reason)
		}
	}
}

// wantReason checks that a result's reason contains every fragment.
func wantReason(t *testing.T, r probes.Result, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(r.Reason, f) {
			t.Errorf("%s: reason %q does not mention %q", r.Name, r.Reason, f)
		}
	}
}

// jwtPattern matches a compact JWS whose header is JSON (every token the API
// issues and every token the probe forges).
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)

// tokenRecorder is an http.RoundTripper that keeps every JWT crossing it,
// in requests (headers, cookies, bodies) and answers (bodies, Set-Cookie):
// every token the API issued to the probe and every token the probe sent.
type tokenRecorder struct {
	next http.RoundTripper

	mu     sync.Mutex
	tokens []string
}

func (rec *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	rec.keep(string(reqBody))
	for _, vs := range req.Header {
		rec.keep(vs...)
	}
	resp, err := rec.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	rec.keep(string(body))
	for _, vs := range resp.Header {
		rec.keep(vs...)
	}
	return resp, nil
}

func (rec *tokenRecorder) keep(texts ...string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, s := range texts {
		for _, tok := range jwtPattern.FindAllString(s, -1) {
			if !slices.Contains(rec.tokens, tok) {
				rec.tokens = append(rec.tokens, tok)
			}
		}
	}
}

// seen returns the distinct tokens recorded so far.
func (rec *tokenRecorder) seen() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.tokens)
}
