package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// TestTheCIGateCatchesADeployThatRevertedTheSecret: on a stack-managed
// fleet whose template reads an SSM parameter, the commands a pipeline
// runs after `serverless deploy`: a store-backed rotation survives the
// redeploy (status --fail-on-drift exits 0); a rotation of the functions
// alone is refused (exit 2) until --allow-deploy-drift, and after the
// next deploy reverted it, status --fail-on-drift exits 1 naming each
// function and what it holds. No output holds a secret.
func TestTheCIGateCatchesADeployThatRevertedTheSecret(t *testing.T) {
	t.Parallel()
	param := "/valine/cli-" + strings.ToLower(rand.Text()[:10]) + "/jwt-secret"
	f := startFleet(t, testbed.Options{Deploy: &testbed.DeployOptions{Source: "ssm:" + param}})
	var outputs []string
	run := func(want int, args ...string) cliRun {
		t.Helper()
		got := runCLI(t, f.env, "", args...)
		outputs = append(outputs, got.stdout+got.stderr)
		if got.code != want {
			t.Fatalf("%v: exit %d, want %d:\n%s", args, got.code, want, got)
		}
		return got
	}

	refusedPlan := run(exitUsage, "rotate", "--mode", "maintenance", "--dry-run")
	if !strings.Contains(refusedPlan.stderr, "the next deploy would undo this rotation") {
		t.Errorf("the dry run of a lambda-env rotation does not say it would be refused:\n%s", refusedPlan)
	}
	plan := run(exitOK, "rotate", "--mode", "maintenance", "--dry-run", "--source", "ssm:"+param)
	for _, want := range []string{"stack " + f.w.StackName, "dynamic reference to ssm:" + param} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("the dry run does not say %q:\n%s", want, plan.stdout)
		}
	}
	refused := run(exitUsage, "rotate", "--mode", "maintenance")
	if !strings.Contains(refused.stderr, "--source ssm:"+param) || !strings.Contains(refused.stderr, "--allow-deploy-drift") {
		t.Errorf("the refusal does not say which source to use:\n%s", refused)
	}
	pre := run(exitFailed, "preflight")
	if !strings.Contains(pre.stdout, "a rotation would be refused") {
		t.Errorf("preflight does not show the refusal:\n%s", pre.stdout)
	}

	run(exitOK, "rotate", "--mode", "maintenance", "--source", "ssm:"+param)
	if _, err := f.w.Redeploy(t.Context()); err != nil {
		t.Fatal(err)
	}
	ok := run(exitOK, "status", "--fail-on-drift") // the source comes from the journal
	if !strings.Contains(ok.stdout, "source of truth ssm:"+param) {
		t.Errorf("status does not show the source:\n%s", ok.stdout)
	}

	run(exitOK, "rotate", "--mode", "maintenance", "--source", "lambda-env", "--allow-deploy-drift")
	env, _, err := f.w.Env(t.Context(), f.w.Function)
	if err != nil {
		t.Fatal(err)
	}
	rotated := secret.NewSecret(env[f.w.Profile.SecretVar])
	if _, err := f.w.Redeploy(t.Context()); err != nil {
		t.Fatal(err)
	}
	gate := run(exitFailed, "status", "--fail-on-drift")
	for _, fn := range f.w.Functions {
		if !strings.Contains(gate.stderr, fn+": "+f.w.Profile.SecretVar+" holds ") {
			t.Errorf("the gate does not name %s and what it holds:\n%s", fn, gate.stderr)
		}
	}
	if !strings.Contains(gate.stderr, "requires "+rotated.Fingerprint()) {
		t.Errorf("the gate does not say what the journal requires (%s):\n%s", rotated, gate.stderr)
	}
	doc := run(exitFailed, "status", "--fail-on-drift", "-o", "json")
	var st struct {
		Drifted    bool `json:"drifted"`
		Mismatches []struct {
			Function, Holds string
		} `json:"mismatches"`
		Rotation struct{ Source string } `json:"rotation"`
	}
	if err := json.Unmarshal([]byte(doc.stdout), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, doc.stdout)
	}
	if !st.Drifted || len(st.Mismatches) != len(f.w.Functions) || st.Rotation.Source != "lambda-env" {
		t.Errorf("status -o json after the revert: drifted %v, %d mismatches, journalled source %q", st.Drifted, len(st.Mismatches), st.Rotation.Source)
	}

	known := []string{f.w.InitialSecret(), f.w.ProbePassword, string(rotated.Reveal())}
	p, err := ssm.NewFromConfig(f.w.AWS).GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	known = append(known, aws.ToString(p.Parameter.Value))
	known = append(known, backupValues(t, f)...)
	audit, err := os.ReadFile(f.audit)
	if err != nil {
		t.Fatal(err)
	}
	for i, out := range append(outputs, string(audit)) {
		assertNoLeak(t, fmt.Sprintf("output %d", i), out, known...)
	}
}

// backupName is the fleet's default backup secret (the prefix as typed).
func backupName(f fleetWorld) string {
	return "valine-check/" + strings.TrimSuffix(f.w.Functions[0], "auth")
}

// backupValues are every value the fleet's backup holds.
func backupValues(t *testing.T, f fleetWorld) []string {
	t.Helper()
	b := rotate.Backup{API: secretsmanager.NewFromConfig(f.w.AWS), Name: backupName(f)}
	var out []string
	for _, read := range []func(context.Context) (secret.Secret, error){b.Current, b.Previous} {
		if s, err := read(t.Context()); err == nil {
			out = append(out, string(s.Reveal()))
		}
	}
	if len(out) == 0 {
		t.Fatal("the backup holds nothing")
	}
	return out
}

// TestStoreCommandsPrintNoSecret runs every command that takes a source
// flag with each store and delivery: no output, error or audit record
// holds a secret or the probe's password.
func TestStoreCommandsPrintNoSecret(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"ssm", "secretsmanager"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			name := "valine/cli-" + strings.ToLower(rand.Text()[:10]) + "/jwt-secret"
			src, secondary := "secretsmanager:"+name, "secretsmanager:"+name+":AWSPREVIOUS"
			if kind == "ssm" {
				src, secondary = "ssm:/"+name, "ssm:/"+name+"-secondary"
			}
			f := startFleet(t, testbed.Options{RuntimeSecrets: &testbed.RuntimeSecrets{Source: src, SecondarySource: secondary, CacheTTL: 200e6}})
			var outputs []string
			known := []string{f.w.InitialSecret(), f.w.ProbePassword}
			for _, args := range [][]string{
				{"preflight", "--source", src, "--delivery", "runtime"},
				{"rotate", "--mode", "maintenance", "--source", src, "--delivery", "runtime", "--cache-ttl", "200ms", "--dry-run"},
				{"rotate", "--mode", "zero-downtime", "--source", src, "--delivery", "runtime", "--cache-ttl", "200ms"},
				{"status"},
				{"finalize", "--dry-run", "--force"},
				{"finalize", "--force", "-o", "json"},
				{"status", "--fail-on-drift", "-o", "json"},
				{"probe", "--source", src, "--backup-secret", backupName(f)},
				{"rollback", "--dry-run"},
				{"rollback"},
				{"--log-level", "debug", "status", "--source", src},
			} {
				got := runCLI(t, f.env, "", args...)
				if got.code != exitOK {
					t.Fatalf("%v:\n%s", args, got)
				}
				outputs = append(outputs, got.stdout+got.stderr)
			}
			known = append(known, backupValues(t, f)...)
			audit, err := os.ReadFile(f.audit)
			if err != nil {
				t.Fatal(err)
			}
			for i, out := range append(outputs, string(audit)) {
				assertNoLeak(t, fmt.Sprintf("output %d", i), out, known...)
			}
		})
	}
}

// TestSandboxShowsWhatADeployDoesToARotation: `sandbox --source ssm`
// exits 0 after showing each step: the store-backed rotation survives the
// redeploy, the functions-only rotation is refused, then done with
// --allow-deploy-drift, reverted by the redeploy and caught; nothing
// shaped like a secret or a token is printed.
func TestSandboxShowsWhatADeployDoesToARotation(t *testing.T) {
	t.Parallel()
	got := runCLI(t, nil, "", "--log-level", "debug", "sandbox", "--source", "ssm", "--propagation", "100ms", "--update-duration", "100ms")
	if got.code != exitOK {
		t.Fatalf("exit %d:\n%s", got.code, got)
	}
	for _, want := range []string{
		"its template gives AUTH_JWT_SECRET a dynamic reference to ssm:/valine/",
		"the redeploy rewrote 0 of 3 functions; status --fail-on-drift: no drift",
		"refused, nothing changed: the next deploy would undo this rotation",
		"again with --allow-deploy-drift",
		"the redeploy rewrote 3 of 3 functions",
		"status --fail-on-drift exits 1:",
		"it holds the secret this rotation replaced: reverted by a deploy",
	} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("the sandbox does not say %q:\n%s", want, got.stdout)
		}
	}
	assertNoLeak(t, "sandbox --source ssm", got.stdout+got.stderr)
	bad := runCLI(t, nil, "", "sandbox", "--source", "vault")
	wantBadInput(t, bad, `--source "vault": must be lambda-env or ssm`, "valine-check sandbox")
}
