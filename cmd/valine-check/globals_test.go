package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// testToken is a well-formed access token signed with a fresh secret, and
// the secret.
func testToken(t *testing.T) (tok, key string) {
	t.Helper()
	s, err := rotate.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := probes.Forge(jwt.MapClaims{"sub": "u1", "type": "access", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()},
		jwt.SigningMethodHS256, s)
	if err != nil {
		t.Fatal(err)
	}
	return signed.Reveal(), string(s.Reveal())
}

// isJSON says whether s is one JSON document.
func isJSON(s string) bool {
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	if dec.Decode(&v) != nil {
		return false
	}
	return dec.Decode(&v) != nil // nothing after it
}

// TestGlobalFlagsEitherSideOfTheCommand: --log-level, --quiet and --output
// are read before the command, after it, and between a command and its
// subcommand; the one nearest the end wins, and any of them wins over its
// environment variable.
func TestGlobalFlagsEitherSideOfTheCommand(t *testing.T) {
	t.Parallel()
	tok, _ := testToken(t)
	env := []string{"VALINE_TOKEN=" + tok}
	for _, tc := range []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantJSON bool
		wantErr  string
	}{
		{"log-level before", nil, []string{"--log-level", "bogus", "token", "inspect"}, exitUsage, false, `--log-level "bogus"`},
		{"log-level after", nil, []string{"token", "inspect", "--log-level", "bogus"}, exitUsage, false, `--log-level "bogus"`},
		{"log-level between", nil, []string{"token", "--log-level", "bogus", "inspect"}, exitUsage, false, `--log-level "bogus"`},
		{"log-level after wins over before", nil, []string{"--log-level", "bogus", "token", "inspect", "--log-level", "debug"}, exitOK, false, ""},
		{"log-level flag wins over env", []string{"VALINE_LOG_LEVEL=bogus"}, []string{"token", "inspect", "--log-level", "info"}, exitOK, false, ""},
		{"log-level env", []string{"VALINE_LOG_LEVEL=bogus"}, []string{"token", "inspect"}, exitUsage, false, `--log-level "bogus"`},
		{"quiet before", nil, []string{"--quiet", "token", "inspect"}, exitOK, false, ""},
		{"quiet after", nil, []string{"token", "inspect", "-q"}, exitOK, false, ""},
		{"output before", nil, []string{"-o", "json", "token", "inspect"}, exitOK, true, ""},
		{"output between", nil, []string{"token", "--output", "json", "inspect"}, exitOK, true, ""},
		{"output after", nil, []string{"token", "inspect", "-o", "json"}, exitOK, true, ""},
		{"output after wins over before", nil, []string{"-o", "text", "token", "inspect", "-o", "json"}, exitOK, true, ""},
		{"output env", []string{"VALINE_OUTPUT=json"}, []string{"token", "inspect"}, exitOK, true, ""},
		{"output flag after wins over env", []string{"VALINE_OUTPUT=json"}, []string{"token", "inspect", "-o", "text"}, exitOK, false, ""},
		{"output flag before wins over env", []string{"VALINE_OUTPUT=json"}, []string{"-o", "text", "token", "inspect"}, exitOK, false, ""},
		{"bad output before", nil, []string{"-o", "yaml", "token", "inspect"}, exitUsage, false, `--output "yaml": must be text or json`},
		{"bad output env", []string{"VALINE_OUTPUT=yaml"}, []string{"token", "inspect"}, exitUsage, false, `--output "yaml": must be text or json`},
		{"junit where there is no report", nil, []string{"token", "inspect", "-o", "junit"}, exitUsage, false, "must be text or json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := runCLI(t, append(append([]string{}, env...), tc.env...), "", tc.args...)
			if got.code != tc.wantCode || !strings.Contains(got.stderr, tc.wantErr) {
				t.Fatalf("want exit %d and %q on stderr:\n%s", tc.wantCode, tc.wantErr, got)
			}
			if tc.wantCode != exitOK {
				return
			}
			if isJSON(got.stdout) != tc.wantJSON {
				t.Errorf("stdout is JSON: %v, want %v:\n%s", !tc.wantJSON, tc.wantJSON, got)
			}
		})
	}
}

// waitLine is the one line a wait longer than a second prints on stderr.
var waitLine = regexp.MustCompile(`(?m)^valine-check: waiting for (.+) \(until \d\d:\d\d:\d\dZ\)$`)

// TestWaitLines: a Logs Insights query that polls for seconds prints one
// line on stderr saying what it waits for and until when, however many
// polls it takes; stdout stays one JSON document; --quiet, before or after
// the command, or VALINE_QUIET, silences it.
func TestWaitLines(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	// 250 ms, 500 ms, 1 s, 2 s between polls: the query runs ~4 s.
	f.w.AWSFront.SetInsightsPollsUntilComplete(5)
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		lines int
	}{
		{"told", nil, []string{"insights", "run", "errors", "-o", "json"}, 1},
		{"quiet after", nil, []string{"insights", "run", "errors", "-o", "json", "--quiet"}, 0},
		{"quiet before", nil, []string{"-q", "insights", "run", "errors", "-o", "json"}, 0},
		{"quiet env", []string{"VALINE_QUIET=true"}, []string{"insights", "run", "errors", "-o", "json"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := runCLI(t, append(append([]string{}, f.env...), tc.env...), "", tc.args...)
			if got.code != exitOK || !isJSON(got.stdout) {
				t.Fatalf("want exit 0 and one JSON document on stdout:\n%s", got)
			}
			lines := waitLine.FindAllStringSubmatch(got.stderr, -1)
			if len(lines) != tc.lines {
				t.Fatalf("%d wait lines on stderr, want %d:\n%s", len(lines), tc.lines, got)
			}
			if tc.lines > 0 && lines[0][1] != "Logs Insights query errors" {
				t.Errorf("the line says it waits for %q", lines[0][1])
			}
		})
	}
}

// TestConvergenceWaitLine: checks that retry while a change propagates
// print one line each, at most, on stderr (a report on stdout), and a
// --log-level after the command takes effect.
func TestConvergenceWaitLine(t *testing.T) {
	t.Parallel()
	rw := startRotated(t, testbed.Options{PropagationDelay: 2500 * time.Millisecond}, false)
	got := runCLI(t, append(append([]string{}, rw.env...), "VALINE_CONVERGENCE=20s"), "", "after-rotation", "-o", "json", "--log-level", "debug")
	var rep probes.Report
	if got.code != exitOK || json.Unmarshal([]byte(got.stdout), &rep) != nil || rep.Schema != probes.ReportSchema {
		t.Fatalf("after-rotation while the change propagates:\n%s", got)
	}
	lines := waitLine.FindAllStringSubmatch(got.stderr, -1)
	if len(lines) == 0 {
		t.Fatalf("no wait line while checks converged for %s:\n%s", rep.Duration, got)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if !strings.HasPrefix(l[1], "check ") || !strings.HasSuffix(l[1], " to pass as the change propagates") || seen[l[1]] {
			t.Errorf("wait line %q: want one per converging check", l[0])
		}
		seen[l[1]] = true
	}
	if !strings.Contains(got.stderr, "level=DEBUG") {
		t.Errorf("--log-level debug after the command did not take effect:\n%s", got.stderr)
	}
	assertNoLeak(t, "after-rotation", got.stdout+got.stderr, rw.old, rw.new, rw.w.ProbePassword)
}
