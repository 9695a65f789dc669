package suites

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// These are plain Go tests, outside the Ginkgo suite: they prove the suite
// can fail (a failing spec would fail the suite itself).

func TestPassMatcher(t *testing.T) {
	tests := []struct {
		name      string
		result    probes.Result
		match     bool
		skipped   string
		warned    bool
		wantInMsg []string
	}{
		{name: "pass", result: probes.Result{Name: "login", Outcome: probes.Pass, Reason: "logged in"}, match: true},
		{name: "fail names check and reason",
			result:    probes.Result{Name: "old-token-rejected", Outcome: probes.Fail, Reason: "the API still accepts a token signed with the old secret", Attempts: 3, Duration: 1500 * time.Millisecond},
			wantInMsg: []string{"old-token-rejected", "failed", "the API still accepts a token signed with the old secret", "3 attempt(s) in 1.5s"}},
		{name: "error is told apart from fail",
			result:    probes.Result{Name: "login", Outcome: probes.Error, Reason: "valine API unreachable"},
			wantInMsg: []string{"login", "could not run", "valine API unreachable"}},
		{name: "warn passes and is reported", result: probes.Result{Name: "no-log-errors", Outcome: probes.Warn, Reason: "no lines"}, match: true, warned: true},
		{name: "skip skips the spec", result: probes.Result{Name: "no-log-errors", Outcome: probes.Skip, Reason: "no function"}, skipped: "check no-log-errors skipped: no function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var skipped string
			var warned bool
			m := &passMatcher{skip: func(msg string) { skipped = msg }, warn: func(probes.Result) { warned = true }}
			ok, err := m.Match(tt.result)
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if ok != tt.match || skipped != tt.skipped || warned != tt.warned {
				t.Errorf("Match = %v, skipped %q, warned %v; want %v, %q, %v", ok, skipped, warned, tt.match, tt.skipped, tt.warned)
			}
			msg := m.FailureMessage(tt.result)
			for _, want := range tt.wantInMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("failure message %q does not contain %q", msg, want)
				}
			}
		})
	}
	if _, err := Pass().Match("login"); err == nil {
		t.Error("Pass().Match(a string) gave no error")
	}
}

// TestSpecsCatchFindings runs checks the way the specs do, against testbed
// APIs that misbehave, and checks that the verdicts fail the spec with a
// message naming the check at fault.
func TestSpecsCatchFindings(t *testing.T) {
	tests := []struct {
		name          string
		misbehaviours testbed.Misbehaviour
		password      string // "" uses the world's
		check         string
		wantFailing   string
		wantInMsg     string
	}{
		{name: "alg=none accepted", misbehaviours: testbed.AcceptAlgNone, check: "security-alg-none",
			wantFailing: "security-alg-none", wantInMsg: "FINDING"},
		{name: "broken login fails what needs it", password: "wrong", check: "security-tampered-signature",
			wantFailing: "login", wantInMsg: "HTTP 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			w, err := testbed.Start(ctx, testbed.Options{Misbehaviours: tt.misbehaviours})
			if err != nil {
				t.Fatalf("starting the testbed: %v", err)
			}
			defer w.Close()
			tb := &localTestbed{world: w, current: secret.NewSecret(w.InitialSecret())}
			in := tb.input(probes.Strict, time.Now())
			if tt.password != "" {
				in.Config.ProbePassword = secret.NewSecret(tt.password)
			}
			rep, err := RunCheck(ctx, in, tt.check)
			if err != nil {
				t.Fatalf("RunCheck: %v", err)
			}
			m := &passMatcher{skip: func(string) {}, warn: func(probes.Result) {}}
			for _, r := range Verdicts(rep, tt.check) {
				ok, err := m.Match(r)
				if err != nil || ok {
					if r.Name == tt.wantFailing {
						t.Fatalf("%s matched Pass (err %v): %s", r.Name, err, r.Reason)
					}
					continue
				}
				msg := m.FailureMessage(r)
				if r.Name != tt.wantFailing || !strings.Contains(msg, tt.wantInMsg) {
					t.Fatalf("first failing verdict: %q; want one for %s containing %q", msg, tt.wantFailing, tt.wantInMsg)
				}
				return
			}
			t.Fatalf("no verdict failed; want %s to", tt.wantFailing)
		})
	}
}
