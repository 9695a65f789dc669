package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"

	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

func TestAfterRotationExitCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		misbehaviours testbed.Misbehaviour
		grace         bool
		args          []string
		wantCode      int
		wantInOutput  []string
	}{
		{name: "healthy strict", args: []string{"after-rotation"}, wantCode: exitOK,
			wantInOutput: []string{"PASS  old-token-rejected", "PASS: "}},
		{name: "healthy grace", grace: true, args: []string{"after-rotation", "--expect", "grace"}, wantCode: exitOK,
			wantInOutput: []string{"PASS  old-token-accepted"}},
		{name: "old tokens still accepted", misbehaviours: testbed.AcceptOldTokens, args: []string{"after-rotation", "--expect", "strict"},
			wantCode: exitFailed, wantInOutput: []string{"FAIL  old-token-rejected", "failed: old-token-rejected"}},
		{name: "secondary ignored in grace", grace: true, misbehaviours: testbed.IgnoreSecondary, args: []string{"after-rotation", "--expect", "grace"},
			wantCode: exitFailed, wantInOutput: []string{"failed: old-token-accepted"}},
		// A 500 says nothing about tokens: could not tell (exit 3), after
		// retrying within the check's deadline.
		{name: "refresh answers 500", misbehaviours: testbed.RefreshFails, args: []string{"after-rotation", "--check-timeout", "500ms"},
			wantCode: exitEnvError, wantInOutput: []string{"ERROR  refresh", "HTTP 500", "still unavailable", "environment failure"}},
		{name: "alg none accepted", misbehaviours: testbed.AcceptAlgNone, args: []string{"after-rotation"},
			wantCode: exitFailed, wantInOutput: []string{"FINDING", "security-alg-none"}},
		{name: "api down", misbehaviours: testbed.Down, args: []string{"after-rotation"},
			wantCode: exitEnvError, wantInOutput: []string{"environment failure", "login", "valine API unreachable", "connection refused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rw := startRotated(t, testbed.Options{PropagationDelay: 100 * time.Millisecond}, tc.grace)
			rw.w.API.SetMisbehaviours(tc.misbehaviours)
			if err := rw.w.API.Err(); err != nil {
				t.Fatal(err)
			}
			got := runCLI(t, rw.env, "", tc.args...)
			if got.code != tc.wantCode {
				t.Fatalf("want exit %d, got:\n%s", tc.wantCode, got)
			}
			for _, want := range tc.wantInOutput {
				if !strings.Contains(got.stdout+got.stderr, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

func TestAfterRotationUsageErrors(t *testing.T) {
	t.Parallel()
	rw := startRotated(t, testbed.Options{}, false)
	without := func(prefix string) []string {
		var out []string
		for _, kv := range rw.env {
			if !strings.HasPrefix(kv, prefix) {
				out = append(out, kv)
			}
		}
		return out
	}
	cases := []struct {
		name    string
		env     []string
		args    []string
		wantErr string
	}{
		{name: "missing api url", env: without("VALINE_API_URL="), args: []string{"after-rotation"}, wantErr: "--api-url (VALINE_API_URL)"},
		{name: "missing password", env: without("VALINE_PROBE_PASSWORD="), args: []string{"after-rotation"}, wantErr: "VALINE_PROBE_PASSWORD"},
		{name: "bad expect", env: rw.env, args: []string{"after-rotation", "--expect", "lenient"}, wantErr: "must be strict or grace"},
		{name: "bad output", env: rw.env, args: []string{"after-rotation", "--output", "yaml"}, wantErr: "must be text, json or junit"},
		{name: "unknown flag", env: rw.env, args: []string{"after-rotation", "--no-such-flag"}, wantErr: "flag provided but not defined"},
		{name: "unknown check", env: rw.env, args: []string{"after-rotation", "--check", "telepathy"}, wantErr: `unknown check or label "telepathy"`},
		{name: "bad profile", env: rw.env, args: []string{"after-rotation", "--profile", "graphql"}, wantErr: "unknown preset"},
		{name: "bad profile field", env: rw.env, args: []string{"after-rotation", "--access-transport", "smoke-signals"}, wantErr: "accessTransport"},
		{name: "secret as argument", env: rw.env, args: []string{"after-rotation", "s3cr3t"}, wantErr: "unexpected arguments"},
		{name: "bad since", env: rw.env, args: []string{"after-rotation", "--since", "yesterday"}, wantErr: "--since"},
		{name: "bad env-stdin key", env: rw.env, args: []string{"after-rotation", "--env-stdin"}, wantErr: "line 1: the key is not one of VALINE_PROBE_PASSWORD"},
		{name: "unknown command", env: rw.env, args: []string{"rotate-everything"}, wantErr: "rotate-everything"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdin := ""
			if tc.name == "bad env-stdin key" {
				stdin = "NOT_A_KEY=value-that-must-not-be-echoed\n"
			}
			got := runCLI(t, tc.env, stdin, tc.args...)
			if got.code != exitUsage {
				t.Fatalf("want exit 2, got:\n%s", got)
			}
			if !strings.Contains(got.stderr, tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, got)
			}
			if lines := strings.Split(strings.TrimSuffix(got.stderr, "\n"), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "Run 'valine-check") {
				t.Errorf("a usage error is one line and where the help is:\n%s", got)
			}
			if strings.Contains(got.stdout+got.stderr, "value-that-must-not-be-echoed") {
				t.Errorf("an input value was echoed:\n%s", got)
			}
		})
	}
}

func TestAfterRotationReportsAndLogs(t *testing.T) {
	t.Parallel()
	rw := startRotated(t, testbed.Options{}, false)
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if err := rw.w.SimulateUsers(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	junitPath, jsonPath := filepath.Join(dir, "out", "report.xml"), filepath.Join(dir, "report.json")
	env := append(append([]string{}, rw.env...), awsEnv(rw.w)...)

	got := runCLI(t, env, "", "after-rotation", "--since", since, "--report-file", junitPath, "--output", "json")
	if got.code != exitOK {
		t.Fatalf("want exit 0, got:\n%s", got)
	}
	var rep probes.Report
	if err := json.Unmarshal([]byte(got.stdout), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, got)
	}
	logs, ok := rep.Result("no-log-errors")
	if !ok || logs.Outcome != probes.Pass || rep.Function != rw.w.Function {
		t.Errorf("no-log-errors against the emulated log group: %+v", logs)
	}
	raw, err := os.ReadFile(junitPath)
	if err != nil {
		t.Fatal(err)
	}
	var suites reporters.JUnitTestSuites
	if err := xml.Unmarshal(raw, &suites); err != nil {
		t.Fatalf("report file is not JUnit XML: %v", err)
	}
	if suites.Tests != len(rep.Results) || suites.Failures != 0 || len(suites.TestSuites[0].TestCases) != len(rep.Results) {
		t.Errorf("JUnit counts %+v do not match the %d results", suites, len(rep.Results))
	}

	// A failure in the window: one deliberate bad request by "a user".
	rw.w.API.SetMisbehaviours(testbed.AcceptOldTokens)
	got = runCLI(t, env, "", "after-rotation", "--since", since, "--check", "logs", "--check", "old-token-rejected", "--report-file", jsonPath)
	if got.code != exitFailed || !strings.Contains(got.stdout, "FAIL  old-token-rejected") {
		t.Fatalf("want old-token-rejected to fail:\n%s", got)
	}
	raw, err = os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile map[string]any
	if err := json.Unmarshal(raw, &fromFile); err != nil || fromFile["status"] != "fail" {
		t.Errorf("JSON report file: %v %v", err, fromFile["status"])
	}
}
