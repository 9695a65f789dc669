package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// wantBadInput checks what the README promises for bad input: exit 2, the
// error on one line that names want, then where the help is, and nothing
// else on stderr.
func wantBadInput(t *testing.T, got cliRun, want, command string) {
	t.Helper()
	if got.code != exitUsage {
		t.Fatalf("want exit 2:\n%s", got)
	}
	lines := strings.Split(strings.TrimSuffix(got.stderr, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "valine-check: ") || lines[1] != "Run '"+command+" --help' for usage." {
		t.Fatalf("want one line of error, then \"Run '%s --help' for usage.\":\n%s", command, got)
	}
	if !strings.Contains(lines[0], want) {
		t.Errorf("the error does not say %q:\n%s", want, got)
	}
	if strings.Contains(got.stdout+got.stderr, "USAGE:") {
		t.Errorf("the help was printed with the error:\n%s", got)
	}
}

// recorder stands in for both the Valine API and AWS: it counts requests
// and answers none usefully, so a command that gets as far as working
// shows in the count.
func recorder(t *testing.T) (url string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "recorder: no work expected", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

// recorderEnv is a complete environment for every command, pointing the
// API and AWS at the recorder.
func recorderEnv(t *testing.T, url string) []string {
	return []string{
		"VALINE_API_URL=" + url, "VALINE_PROBE_EMAIL=probe@valine.example", "VALINE_PROBE_PASSWORD=probe-password-7c1e",
		"VALINE_OLD_SECRET=old-secret-0123456789abcdef0123456789", "VALINE_SECRET=new-secret-0123456789abcdef0123456789",
		"VALINE_FLEET_PREFIX=pv-none-", "VALINE_AUDIT_FILE=" + filepath.Join(t.TempDir(), "audit.jsonl"),
		"AWS_ENDPOINT_URL=" + url, "AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"VALINE_CONVERGENCE=1s", "VALINE_CHECK_TIMEOUT=1s",
	}
}

// TestBadInputIsOneLineBeforeAnyWork: each bad input is exit 2 and one
// line, before the first request to the API or to AWS.
func TestBadInputIsOneLineBeforeAnyWork(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		want    string
		command string
	}{
		{"api url not a url", []string{"after-rotation", "--api-url", "::::not a url"}, "--api-url: not a URL", "valine-check after-rotation"},
		{"api url ftp", []string{"after-rotation", "--api-url", "ftp://example.com"}, "must be http or https", "valine-check after-rotation"},
		{"api url without host", []string{"after-rotation", "--api-url", "http://"}, "no host", "valine-check after-rotation"},
		{"api url with an empty host", []string{"after-rotation", "--api-url", "https://:8443/v1"}, "no host", "valine-check after-rotation"},
		{"api url without scheme", []string{"after-rotation", "--api-url", "api.valine.example"}, "must be http or https", "valine-check after-rotation"},
		{"api url of a rotation", []string{"rotate", "--mode", "maintenance", "--api-url", "ftp://example.com"}, "--api-url", "valine-check rotate"},
		{"api url of the probe", []string{"probe", "--api-url", "http://"}, "no host", "valine-check probe"},

		{"unknown token subcommand", []string{"token", "frobnicate"}, `unknown command "frobnicate"`, "valine-check token"},
		{"unknown alarms subcommand", []string{"alarms", "frobnicate"}, `unknown command "frobnicate"`, "valine-check alarms"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, "valine-check"},
		{"unknown flag", []string{"token", "inspect", "--frobnicate"}, "flag provided but not defined", "valine-check token inspect"},

		{"report file is a directory", []string{"after-rotation", "--report-file", t.TempDir()}, "is a directory", "valine-check after-rotation"},
		{"status junit", []string{"status", "-o", "junit"}, `--output "junit": must be text or json`, "valine-check status"},
		{"token inspect junit", []string{"token", "inspect", "-o", "junit"}, "must be text or json", "valine-check token inspect"},
		{"since in the future", []string{"after-rotation", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "in the future", "valine-check after-rotation"},

		{"zero convergence", []string{"after-rotation", "--convergence", "0"}, "--convergence: 0s: must be more than zero", "valine-check after-rotation"},
		{"negative check timeout", []string{"after-rotation", "--check-timeout", "-1s"}, "--check-timeout: -1s", "valine-check after-rotation"},
		{"zero grace", []string{"rotate", "--mode", "zero-downtime", "--grace", "0s"}, "--grace: 0s", "valine-check rotate"},
		{"negative grace", []string{"rotate", "--mode", "zero-downtime", "--grace", "-24h"}, "--grace: -24h0m0s", "valine-check rotate"},
		{"zero compare window", []string{"rotate", "--mode", "maintenance", "--compare-window", "0"}, "--compare-window", "valine-check rotate"},
		{"negative ingestion wait", []string{"finalize", "--ingestion-wait", "-1s"}, "--ingestion-wait: -1s: must not be negative", "valine-check finalize"},
		{"zero aws attempts", []string{"rotate", "--mode", "maintenance", "--aws-max-attempts", "0"}, "--aws-max-attempts: 0: must be at least 1", "valine-check rotate"},
		{"negative aws attempts", []string{"status", "--aws-max-attempts", "-3"}, "--aws-max-attempts: -3", "valine-check status"},
		{"NaN failure increase", []string{"rotate", "--mode", "maintenance", "--max-failure-increase", "NaN"}, "--max-failure-increase: NaN", "valine-check rotate"},
		{"negative failure increase", []string{"rollback", "--max-failure-increase", "-1"}, "--max-failure-increase: -1", "valine-check rollback"},
		{"negative concurrency", []string{"rollback", "--concurrency", "-1"}, "--concurrency: -1", "valine-check rollback"},
		{"a Lambda rate above the quota", []string{"rotate", "--mode", "maintenance", "--lambda-rate", "20"}, "--lambda-rate/--lambda-read-rate: control-plane rate 20", "valine-check rotate"},
		{"a zero GetFunction rate", []string{"finalize", "--lambda-read-rate", "0"}, "GetFunction rate 0", "valine-check finalize"},
		{"zero check timeout of the preflight", []string{"preflight", "--check-timeout", "0"}, "--check-timeout", "valine-check preflight"},
		{"zero convergence of the probe", []string{"probe", "--convergence", "0"}, "--convergence", "valine-check probe"},
		{"zero insights deadline", []string{"insights", "run", "errors", "--deadline", "0"}, "--deadline", "valine-check insights run errors"},

		{"an unknown source", []string{"rotate", "--mode", "maintenance", "--source", "vault:x"}, `--source: unknown source "vault:x"`, "valine-check rotate"},
		{"an ssm source without a name", []string{"status", "--source", "ssm:"}, "is not an SSM parameter name", "valine-check status"},
		{"an ssm source under aws", []string{"finalize", "--source", "ssm:/aws/x"}, "is not an SSM parameter name", "valine-check finalize"},
		{"a secrets manager source with a space", []string{"rollback", "--source", "secretsmanager:a b"}, "is not a Secrets Manager secret name", "valine-check rollback"},
		{"a probe source without a backup", []string{"probe", "--source", "ssm:/valine/prod/jwt-secret"}, "--source needs --backup-secret", "valine-check probe"},
		{"a bad probe source", []string{"probe", "--source", "ssm"}, "--source: unknown source", "valine-check probe"},
		{"an unknown delivery", []string{"rotate", "--mode", "maintenance", "--delivery", "lambda"}, `--delivery: unknown delivery "lambda" (want env or runtime)`, "valine-check rotate"},
		{"a negative cache ttl", []string{"rotate", "--mode", "maintenance", "--cache-ttl", "-5m"}, "--cache-ttl: -5m0s: must not be negative", "valine-check rotate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, requests := recorder(t)
			got := runCLI(t, recorderEnv(t, url), "", tc.args...)
			wantBadInput(t, got, tc.want, tc.command)
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests reached the API or AWS before the bad input was refused", n)
			}
		})
	}
}

// TestHelpStillWorks: the help is one --help away, exit 0, on stdout.
func TestHelpStillWorks(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"after-rotation", "--help"}, {"token", "forge", "--help"}, {"token"}, {"token", "--help"}, {}} {
		got := runCLI(t, nil, "", args...)
		if got.code != exitOK || !strings.Contains(got.stdout, "USAGE:") || got.stderr != "" {
			t.Errorf("%v: want exit 0 and the help on stdout:\n%s", args, got)
		}
	}
}

// TestTokenCommandsRefuseAMalformedToken: a token that does not parse is
// bad input (exit 2, one line), named by its fingerprint only.
func TestTokenCommandsRefuseAMalformedToken(t *testing.T) {
	t.Parallel()
	good, err := probes.Forge(jwt.MapClaims{"sub": "u1"}, jwt.SigningMethodHS256, secret.NewSecret("a-secret-for-the-test-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good.Reveal(), ".")
	malformed := map[string]string{
		"a bare secret":            "c2VjcmV0LXRoYXQtbXVzdC1ub3QtYmUtcHJpbnRlZC0wMTIzNDU2Nzg5YWI=",
		"two segments":             parts[0] + "." + parts[1],
		"header is not base64":     "not*base64." + parts[1] + "." + parts[2],
		"claims are not an object": parts[0] + ".WzEsMiwzXQ." + parts[2], // [1,2,3]
	}
	env := []string{"VALINE_SECRET=current-secret-0123456789abcdef0123", "VALINE_OLD_SECRET=old-secret-0123456789abcdef012345"}
	for name, tok := range malformed {
		for _, sub := range []string{"inspect", "which"} {
			t.Run(name+"/"+sub, func(t *testing.T) {
				t.Parallel()
				for _, run := range []cliRun{
					runCLI(t, append(slices.Clone(env), "VALINE_TOKEN="+tok), "", "token", sub),
					runCLI(t, env, tok+"\n", "token", sub),
				} {
					wantBadInput(t, run, "token:"+secret.Fingerprint(tok)+" is not a well-formed JWT", "valine-check token "+sub)
					for _, part := range strings.Split(tok, ".") {
						if len(part) > 3 && strings.Contains(run.stdout+run.stderr, part) {
							t.Errorf("the output holds part of the token:\n%s", run)
						}
					}
				}
			})
		}
	}
}

// TestMissingFunctionIsBadInput: a function named in --functions that
// does not exist is exit 2 naming it, for every command that resolves a
// fleet, and nothing changes.
func TestMissingFunctionIsBadInput(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	var env []string
	for _, kv := range f.env {
		if !strings.HasPrefix(kv, "VALINE_FLEET_PREFIX=") {
			env = append(env, kv)
		}
	}
	// Two missing: each is named, still on one line.
	missing, alsoMissing := f.w.Functions[0]+"-gone", f.w.Functions[0]+"-never-was"
	functions := f.w.Functions[1] + "," + missing + "," + alsoMissing
	before := f.envs(t)
	for _, tc := range []struct {
		command string
		args    []string
	}{
		{"valine-check rotate", []string{"rotate", "--mode", "maintenance", "--functions", functions}},
		{"valine-check status", []string{"status", "--functions", functions}},
		{"valine-check alarms plan", []string{"alarms", "plan", "--api-name", "valine-api", "--stage", "prod", "--functions", functions}},
	} {
		got := runCLI(t, env, "", tc.args...)
		wantBadInput(t, got, "function "+missing+" not found", tc.command)
		if !strings.Contains(got.stderr, "function "+alsoMissing+" not found") {
			t.Errorf("the second missing function is not named:\n%s", got)
		}
	}
	if !sameEnvs(before, f.envs(t)) {
		t.Error("a refused command changed a function")
	}
}

// TestProbeWithAMissingBackupSecret: --backup-secret naming a secret that
// does not exist errs the check that needed the journal (exit 3) saying
// so, instead of passing as "no rotation journalled".
func TestProbeWithAMissingBackupSecret(t *testing.T) {
	t.Parallel()
	pw := startProbeWorld(t, testbed.Options{})
	name := "valine-check/no-such-backup-" + pw.w.Function
	got := runCLI(t, pw.with("VALINE_PROBE_SECRET_ID="+pw.credsID), "", "probe", "--backup-secret", name)
	if got.code != exitEnvError {
		t.Fatalf("want exit 3:\n%s", got)
	}
	if !strings.Contains(got.stdout, "ERROR  new-secret-in-use") || !strings.Contains(got.stdout+got.stderr, "backup secret "+name+" does not exist") {
		t.Errorf("the report does not say the backup secret does not exist:\n%s", got)
	}
	pw.wantNoSecrets(t, got)
}

// TestABadSourceInTheEnvironmentIsBadInputToo: VALINE_SOURCE and
// VALINE_DELIVERY are checked as the flags are, before any request.
func TestABadSourceInTheEnvironmentIsBadInputToo(t *testing.T) {
	t.Parallel()
	for _, env := range []string{"VALINE_SOURCE=ssm:relative path", "VALINE_DELIVERY=sideways"} {
		url, requests := recorder(t)
		got := runCLI(t, append(recorderEnv(t, url), env), "", "rotate", "--mode", "maintenance")
		name, _, _ := strings.Cut(strings.TrimPrefix(env, "VALINE_"), "=")
		wantBadInput(t, got, "--"+strings.ToLower(name), "valine-check rotate")
		if n := requests.Load(); n != 0 {
			t.Errorf("%s: %d requests before the bad input was refused", env, n)
		}
	}
}
