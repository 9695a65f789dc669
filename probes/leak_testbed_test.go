package probes_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
)

// No secret, password or token reaches a report (text, JSON, JUnit), a
// result's details or the debug log, whether the run passes, finds defects
// or cannot reach the API. The tokens looked for are every one that crossed
// the wire during the runs, recorded in the probe's HTTP client, and one the
// test got by logging in itself and handed to a run as the old token.
func TestNothingLeaks(t *testing.T) {
	t.Parallel()
	const (
		oldSecret = "bGVhay10ZXN0LW9sZC1zZWNyZXQtMzItYnl0ZXMhISE="
		password  = "pw-leak-test-Xq7pL2vR9s"
	)
	newSecret := generateSecret(t)
	r := baseRig(t, testbed.Options{InitialSecret: oldSecret, ProbePassword: password}, probes.Strict)
	rec := &tokenRecorder{next: http.DefaultTransport}
	r.target.API.HTTP = &http.Client{Transport: rec, Timeout: 15 * time.Second}
	ctx := t.Context()

	// A token the API issued before the rotation, signed with the old secret.
	mine, err := r.target.API.Login(ctx, r.w.ProbeEmail, secret.NewSecret(password))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}

	var logs bytes.Buffer
	runner := fastRunner()
	runner.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var out bytes.Buffer
	var reports []probes.Report
	render := func(rep probes.Report) {
		t.Helper()
		reports = append(reports, rep)
		for _, f := range []report.Format{report.Text, report.JSON, report.JUnit} {
			if err := report.Write(&out, f, rep); err != nil {
				t.Fatalf("report.Write %s: %v", f, err)
			}
		}
		fmt.Fprintf(&out, "%v\n%+v\n%#v\n", rep, rep, rep)
	}
	run := func(expect probes.Expect, m testbed.Misbehaviour, edit func(*probes.Config)) probes.Report {
		t.Helper()
		r.w.API.SetMisbehaviours(m)
		r.cfg.Expect = expect
		cfg := r.cfg
		if edit != nil {
			edit(&cfg)
		}
		rep := runner.Run(ctx, probes.ForExpect(probes.Catalog(), expect), r.target, cfg)
		render(rep)
		return rep
	}

	r.cfg.LogsSince = testbed.NextLogMillisecond()
	if err := r.w.SetSecrets(ctx, string(newSecret.Reveal()), ""); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	r.cfg.OldSecret, r.cfg.CurrentSecret = secret.NewSecret(oldSecret), newSecret
	simulateUsers(t, r, 2)

	if rep := run(probes.Strict, 0, nil); rep.Status() != probes.Pass {
		t.Errorf("clean strict run: %s", rep.Status())
	}
	// Every defect at once, with the test's own token as the old token: the
	// reasons now quote answers and findings.
	everything := testbed.AcceptOldTokens | testbed.AcceptAlgNone | testbed.AcceptAnyHMAC | testbed.RefreshFails |
		testbed.AcceptExpired | testbed.AcceptRefreshAsAccess | testbed.SkipSignature
	if rep := run(probes.Strict, everything, func(c *probes.Config) { c.OldToken = mine.Access }); rep.Status() != probes.Fail {
		t.Errorf("strict run against every defect: %s", rep.Status())
	}
	if err := r.w.SetSecrets(ctx, string(newSecret.Reveal()), oldSecret); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	// A broken client's rejections in the log window make the log check
	// fail and quote a sample of the lines.
	r.w.API.SetMisbehaviours(0)
	badRequests(t, r, 1, 1)
	testbed.NextLogMillisecond() // the bad lines must not share the run's first millisecond
	if rep := run(probes.Grace, 0, nil); mustResult(t, rep, "no-log-errors").Outcome != probes.Fail {
		t.Errorf("no-log-errors did not report the failures in its window")
	}
	if rep := run(probes.Grace, testbed.Down, nil); mustResult(t, rep, "login").Outcome != probes.Error {
		t.Errorf("login against a down API: %s", mustResult(t, rep, "login").Outcome)
	}

	tokens := append(rec.seen(), mine.Access.Reveal(), mine.Refresh.Reveal())
	if len(tokens) < 10 {
		t.Fatalf("only %d tokens recorded: the recorder is not seeing the runs", len(tokens))
	}
	if !strings.Contains(out.String(), "token:sha256:") || !strings.Contains(logs.String(), `"check":"old-token-rejected"`) {
		t.Fatalf("the outputs do not look like reports and debug logs of these runs:\n%s\n%s", out.String(), logs.String())
	}
	secrets := map[string]string{"old secret": oldSecret, "new secret": string(newSecret.Reveal()), "probe password": password}
	for _, o := range []struct{ name, text string }{{"report output", out.String()}, {"debug log", logs.String()}} {
		for what, s := range secrets {
			if strings.Contains(o.text, s) {
				t.Errorf("the %s contains the %s", o.name, what)
			}
		}
		for _, tok := range tokens {
			if strings.Contains(o.text, tok) {
				t.Errorf("the %s contains a token (%s)", o.name, secret.NewToken(tok))
			}
		}
		if m := jwtPattern.FindString(o.text); m != "" {
			t.Errorf("the %s contains something shaped like a JWT (%s)", o.name, secret.NewToken(m))
		}
	}
	for _, rep := range reports {
		for _, res := range rep.Results {
			for k, v := range res.Details {
				text := fmt.Sprintf("%v %+v %#v", v, v, v)
				if m := jwtPattern.FindString(text); m != "" {
					t.Errorf("%s: details[%s] holds something shaped like a JWT (%s)", res.Name, k, secret.NewToken(m))
				}
				for what, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("%s: details[%s] holds the %s", res.Name, k, what)
					}
				}
			}
		}
	}
}
