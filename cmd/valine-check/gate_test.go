package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// writes counts the AWS requests that change something.
func (f fleetWorld) writes() int {
	n := 0
	for _, op := range []string{"lambda:UpdateFunctionConfiguration", "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue",
		"secretsmanager:TagResource", "secretsmanager:UntagResource", "secretsmanager:DeleteSecret"} {
		n += f.w.AWSFront.Calls(op)
	}
	return n
}

func with(env []string, extra ...string) []string {
	return append(append([]string{}, env...), extra...)
}

// The gate's exit codes, as the README's table gives them.
func TestGateExitCodes(t *testing.T) {
	t.Parallel()
	t.Run("wrong probe password: exit 2, no AWS write", func(t *testing.T) {
		t.Parallel()
		f := startFleet(t, testbed.Options{})
		for _, mode := range []string{"maintenance", "zero-downtime"} {
			before := f.writes()
			got := runCLI(t, with(f.env, "VALINE_PROBE_PASSWORD=wrong-password"), "", "rotate", "--mode", mode)
			if got.code != exitUsage || !strings.Contains(got.stderr, "the baseline could not log in") || !strings.Contains(got.stderr, "nothing was changed") {
				t.Fatalf("rotate --mode %s with a wrong password:\n%s", mode, got)
			}
			if n := f.writes() - before; n != 0 {
				t.Errorf("rotate --mode %s with a wrong password made %d AWS writes", mode, n)
			}
			if strings.Contains(got.stdout+got.stderr, "wrong-password") {
				t.Error("the output holds the password")
			}
		}
	})
	t.Run("pre-existing findings: exit 0, or 1 with --fail-on-findings, never a rollback", func(t *testing.T) {
		t.Parallel()
		f := startFleet(t, testbed.Options{Misbehaviours: testbed.AcceptAnyHMAC | testbed.AcceptNoExp})
		got := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--compare=false")
		if got.code != exitOK || !strings.Contains(got.stdout, "pre-existing (also before the change") || !strings.Contains(got.stdout, "phase completed") ||
			!strings.Contains(got.stdout, "2 pre-existing findings, not counted against the change (security-hs384-hs512, security-no-exp)") {
			t.Fatalf("maintenance with pre-existing findings:\n%s", got)
		}
		got = runCLI(t, f.env, "", "rotate", "--mode", "emergency", "--yes", "--fail-on-findings", "--compare=false")
		if got.code != exitFailed || !strings.Contains(got.stdout, "phase completed") || !strings.Contains(got.stderr, "nothing was rolled back") {
			t.Fatalf("emergency --fail-on-findings:\n%s", got)
		}
		raw, err := os.ReadFile(f.audit)
		if err != nil || !strings.Contains(string(raw), `"preExistingFindings":["security-hs384-hs512","security-no-exp"]`) {
			t.Errorf("the audit does not record the pre-existing findings (%v):\n%s", err, raw)
		}
	})
	t.Run("emergency with the API down rotates; verification pending: exit 3", func(t *testing.T) {
		t.Parallel()
		f := startFleet(t, testbed.Options{Misbehaviours: testbed.Down})
		got := runCLI(t, f.env, "", "rotate", "--mode", "emergency", "--yes", "--compare=false")
		if got.code != exitEnvError || !strings.Contains(got.stdout, "WARNING: the baseline could not log in") || !strings.Contains(got.stderr, "verification could not tell") {
			t.Fatalf("emergency with the API down:\n%s", got)
		}
		st := runCLI(t, f.env, "", "status")
		if st.code != exitFailed || !strings.Contains(st.stdout, "VERIFICATION PENDING") {
			t.Errorf("status after a pending verification:\n%s", st)
		}
	})
	t.Run("rollback of an emergency asks for the rotation id", func(t *testing.T) {
		t.Parallel()
		f := startFleet(t, testbed.Options{})
		if got := runCLI(t, f.env, "", "rotate", "--mode", "emergency", "--yes", "--compare=false"); got.code != exitOK {
			t.Fatalf("emergency:\n%s", got)
		}
		var js struct {
			Rotation struct{ ID string } `json:"rotation"`
		}
		st := runCLI(t, f.env, "", "status", "-o", "json")
		if err := json.Unmarshal([]byte(st.stdout), &js); err != nil || js.Rotation.ID == "" {
			t.Fatalf("status json: %v\n%s", err, st)
		}
		before := f.writes()
		refused := runCLI(t, f.env, "emergency\n", "rollback", "--compare=false")
		if refused.code != exitUsage || !strings.Contains(refused.stderr, "COMPROMISED") || !strings.Contains(refused.stderr, js.Rotation.ID) {
			t.Fatalf("rollback of an emergency, wrong answer:\n%s", refused)
		}
		if n := f.writes() - before; n != 0 {
			t.Errorf("a refused rollback made %d AWS writes", n)
		}
		done := runCLI(t, f.env, js.Rotation.ID+"\n", "rollback", "--compare=false")
		if done.code != exitOK || !strings.Contains(done.stdout, "phase rolled-back") {
			t.Fatalf("rollback of an emergency, confirmed:\n%s", done)
		}
	})
	t.Run("expect grace with a profile without a secondary fails at once", func(t *testing.T) {
		t.Parallel()
		rw := startRotated(t, testbed.Options{Profile: profile.Presets["cookie"]}, false)
		got := runCLI(t, rw.env, "", "after-rotation", "--expect", "grace", "-o", "json", "--check", "old-token-accepted")
		var rep probes.Report
		if err := json.Unmarshal([]byte(got.stdout), &rep); err != nil || got.code != exitFailed {
			t.Fatalf("after-rotation --expect grace on cookie: %v\n%s", err, got)
		}
		res, _ := rep.Result("old-token-accepted")
		if res.Outcome != probes.Fail || res.Attempts != 1 || !strings.Contains(res.Reason, "no grace period is possible") {
			t.Errorf("old-token-accepted: %s after %d attempts: %s", res.Outcome, res.Attempts, res.Reason)
		}
	})
}

// The sandbox against a backend like the real one: preflight, a
// maintenance rotation that completes with the pre-existing findings
// printed as such, and a zero-downtime attempt refused at once.
func TestSandboxValineBackend(t *testing.T) {
	t.Parallel()
	got := runCLI(t, nil, "", "sandbox", "--backend", "valine", "--propagation", "100ms")
	if got.code != exitOK {
		t.Fatalf("sandbox --backend valine:\n%s", got)
	}
	for _, want := range []string{"sandbox: preflight", "pre-existing finding", "completed",
		"2 pre-existing findings, not counted against the change (security-hs384-hs512, security-no-exp)",
		"refused in", "names no secondary variable", "sandbox: every check passed"} {
		if !strings.Contains(got.stdout+got.stderr, want) {
			t.Errorf("the sandbox output lacks %q:\n%s", want, got)
		}
	}
	if bad := runCLI(t, nil, "", "sandbox", "--backend", "graphql"); bad.code != exitUsage {
		t.Errorf("sandbox --backend graphql: exit %d", bad.code)
	}
}

// SIGINT while a rotation verifies: "interrupted", exit 130, the journal
// where a re-run expects it, and the re-run finishes.
func TestRotateInterruptedBySIGINT(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{Latency: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "rotate", "--mode", "maintenance", "--compare=false")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_EC2_METADATA_DISABLED=true"}, f.env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var out strings.Builder
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "applied:") {
			time.Sleep(100 * time.Millisecond) // into the update or the verification
			_ = cmd.Process.Signal(os.Interrupt)
			break
		}
	}
	_, _ = io.Copy(&out, stdout)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("rotate after SIGINT: %v\n--- stdout\n%s--- stderr\n%s", err, out.String(), stderr.String())
	}
	st := runCLI(t, f.env, "", "status", "-o", "json")
	if !strings.Contains(st.stdout, `"phase": "applied"`) {
		t.Errorf("status after the interrupt:\n%s", st)
	}
	raw, _ := os.ReadFile(f.audit)
	if !strings.Contains(string(raw), `"outcome":"interrupted"`) {
		t.Errorf("the interrupt is not audited:\n%s", raw)
	}
	again := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--compare=false")
	if again.code != exitOK || !strings.Contains(again.stdout, "phase completed") {
		t.Fatalf("re-run after the interrupt:\n%s", again)
	}
}

// status compares the fleet with the journal: after a deploy put the old
// secret back everywhere, it exits 1 naming each function.
func TestStatusCatchesARevertedFleet(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	if got := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--compare=false"); got.code != exitOK {
		t.Fatalf("rotate:\n%s", got)
	}
	if got := runCLI(t, f.env, "", "status"); got.code != exitOK {
		t.Fatalf("status after the rotation:\n%s", got)
	}
	for _, fn := range f.w.Functions {
		if err := f.w.EditEnv(t.Context(), fn, func(env map[string]string) { env[f.w.Profile.SecretVar] = f.w.InitialSecret() }); err != nil {
			t.Fatal(err)
		}
	}
	got := runCLI(t, f.env, "", "status")
	if got.code != exitFailed || strings.Count(got.stdout, "MISMATCH") != len(f.w.Functions) ||
		!strings.Contains(got.stdout, "reverted by a deploy or another writer?") || !strings.Contains(got.stdout, "all 3 functions agree") {
		t.Fatalf("status after a revert:\n%s", got)
	}
	if strings.Contains(got.stdout+got.stderr, f.w.InitialSecret()) {
		t.Error("status printed the secret")
	}
}

// One fleet, one journal and lock, however it is typed (issue 9, item 1).
func TestFleetIdentityAcrossSelectors(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	prefix := strings.TrimSuffix(f.w.Functions[0], "auth")
	if got := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--compare=false"); got.code != exitOK {
		t.Fatalf("rotate --prefix:\n%s", got)
	}
	// The default backup of --prefix X- is valine-check/X-, as the README shows.
	var st struct {
		Backup struct{ Name string } `json:"backup"`
	}
	js := runCLI(t, f.env, "", "status", "-o", "json")
	if err := json.Unmarshal([]byte(js.stdout), &st); err != nil || st.Backup.Name != "valine-check/"+prefix {
		t.Fatalf("status backup %q (%v), want valine-check/%s", st.Backup.Name, err, prefix)
	}
	// The same functions typed as --functions: refused, naming both backups.
	var byName []string
	for _, e := range f.env {
		if !strings.HasPrefix(e, "VALINE_FLEET_PREFIX=") {
			byName = append(byName, e)
		}
	}
	byName = append(byName, "VALINE_FUNCTIONS="+strings.Join(f.w.Functions, ","))
	before := f.writes()
	got := runCLI(t, byName, "", "rotate", "--mode", "maintenance", "--compare=false")
	if got.code != exitUsage || !strings.Contains(got.stderr, "belongs to valine-check/"+prefix) || !strings.Contains(got.stderr, "not to valine-check/"+prefix+"admin") {
		t.Fatalf("the same fleet typed another way:\n%s", got)
	}
	if n := f.writes() - before; n != 0 {
		t.Errorf("%d AWS writes by the refused selector", n)
	}
	// Chosen with the owner's backup, it goes ahead.
	if got := runCLI(t, byName, "", "rotate", "--mode", "maintenance", "--compare=false", "--backup-secret", "valine-check/"+prefix); got.code != exitOK {
		t.Fatalf("the same fleet with its owner's backup:\n%s", got)
	}
}

// --break-lock frees a lock taken on another machine, saying who took it
// and how long ago, and refuses one whose holder runs on this machine.
func TestBreakLockRules(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	prefix := strings.TrimSuffix(f.w.Functions[0], "auth")
	b := rotate.Backup{API: secretsmanager.NewFromConfig(f.w.AWS), Name: "valine-check/" + prefix}
	host, _ := os.Hostname()
	if _, err := b.Lock(t.Context(), rotate.LockInfo{Holder: "this-host-operator", Operation: "rotate", Host: host, PID: os.Getpid(), Since: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	alive := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--break-lock", "--compare=false")
	if alive.code != exitUsage || !strings.Contains(alive.stderr, "still running on this machine") {
		t.Fatalf("--break-lock of a live local holder:\n%s", alive)
	}
	if _, _, err := b.BreakLock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(t.Context(), rotate.LockInfo{Holder: "ci-operator", Operation: "rotate", Host: "ci-runner-7", PID: 4242, Since: time.Now().Add(-3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	broken := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--break-lock", "--compare=false")
	if broken.code != exitOK || !strings.Contains(broken.stdout, "broke the lock") || !strings.Contains(broken.stdout, "ci-operator") || !strings.Contains(broken.stdout, "3h0m") {
		t.Fatalf("--break-lock of a foreign lock:\n%s", broken)
	}
}

// A prefix's backup created under the legacy default name (no trailing
// "-") keeps being found, and the command says so.
func TestLegacyBackupNameIsStillFound(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	legacy := "valine-check/" + strings.TrimSuffix(f.w.Functions[0], "-auth")
	if got := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--compare=false", "--backup-secret", legacy); got.code != exitOK {
		t.Fatalf("rotate with the legacy backup:\n%s", got)
	}
	got := runCLI(t, f.env, "", "status")
	if got.code != exitOK || !strings.Contains(got.stderr, "legacy default name") || !strings.Contains(got.stdout, "backup "+legacy+":") {
		t.Fatalf("status without --backup-secret:\n%s", got)
	}
}
