package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// fleetWorld is a world with a fleet of three functions, not rotated, and
// the environment pointing every fleet command at it.
type fleetWorld struct {
	w     *testbed.World
	env   []string
	audit string
}

func startFleet(t *testing.T, opts testbed.Options) fleetWorld {
	t.Helper()
	id := strings.ToLower(strings.TrimPrefix(journal.NewRotationID(time.Now()), "rot-"))
	id = id[len(id)-6:]
	prefix := "pv-cli-" + id + "-"
	opts.Functions = []string{prefix + "auth", prefix + "profiles", prefix + "admin"}
	if opts.ExtraEnv == nil {
		opts.ExtraEnv = map[string]string{"DATABASE_URL": "postgres://valine:db-pass-" + id + "@db:5432/valine"}
	}
	w, err := testbed.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	env := append([]string{
		"VALINE_API_URL=" + w.APIURL,
		"VALINE_PROFILE=" + w.Profile.Name,
		"VALINE_PROBE_EMAIL=" + w.ProbeEmail,
		"VALINE_PROBE_PASSWORD=" + w.ProbePassword,
		"VALINE_FLEET_PREFIX=" + prefix,
		"VALINE_AUDIT_FILE=" + audit,
		"VALINE_CONVERGENCE=5s",
		"VALINE_REASON=scheduled rotation",
	}, awsEnv(w)...)
	return fleetWorld{w: w, env: env, audit: audit}
}

// envs reads every function's environment.
func (f fleetWorld) envs(t *testing.T) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, fn := range f.w.Functions {
		env, _, err := f.w.Env(t.Context(), fn)
		if err != nil {
			t.Fatal(err)
		}
		out[fn] = env
	}
	return out
}

func sameEnvs(a, b map[string]map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for fn, ea := range a {
		eb := b[fn]
		if len(ea) != len(eb) {
			return false
		}
		for k, v := range ea {
			if eb[k] != v {
				return false
			}
		}
	}
	return true
}

func TestRotateCommandsEndToEnd(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	before := f.envs(t)

	dry := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--dry-run")
	if dry.code != exitOK || !strings.Contains(dry.stdout, "dry run: nothing was changed") || !strings.Contains(dry.stdout, f.w.Functions[2]) {
		t.Fatalf("dry run:\n%s", dry)
	}
	if !sameEnvs(before, f.envs(t)) {
		t.Fatal("--dry-run changed a function")
	}

	zd := runCLI(t, f.env, "", "rotate", "--mode", "zero-downtime")
	if zd.code != exitOK || !strings.Contains(zd.stdout, "phase grace") || !strings.Contains(zd.stdout, "PASS  old-token-accepted") {
		t.Fatalf("rotate --mode zero-downtime:\n%s", zd)
	}
	if !strings.Contains(zd.stdout, "before/after the change") || !strings.Contains(zd.stdout, "jwt-failures per 5m") {
		t.Errorf("the rotation's report lacks the before/after figures:\n%s", zd)
	}
	st := runCLI(t, f.env, "", "status")
	if st.code != exitOK || !strings.Contains(st.stdout, "grace period:") || !strings.Contains(st.stdout, "all 3 functions agree") ||
		!strings.Contains(st.stdout, "secondary-secret use, last 24h: ") || strings.Contains(st.stdout, "last 24h: unknown") {
		t.Fatalf("status during grace:\n%s", st)
	}
	early := runCLI(t, f.env, "", "finalize")
	if early.code != exitUsage || !strings.Contains(early.stderr, "grace period is not over") {
		t.Fatalf("finalize before the deadline:\n%s", early)
	}
	fin := runCLI(t, f.env, "", "finalize", "--force")
	if fin.code != exitOK || !strings.Contains(fin.stdout, "phase completed") || !strings.Contains(fin.stdout, "PASS  old-token-rejected") {
		t.Fatalf("finalize --force:\n%s", fin)
	}
	rb := runCLI(t, f.env, "", "rollback")
	if rb.code != exitOK || !strings.Contains(rb.stdout, "phase rolled-back") {
		t.Fatalf("rollback:\n%s", rb)
	}
	again := runCLI(t, f.env, "", "rollback")
	if again.code != exitUsage || !strings.Contains(again.stderr, "nothing to roll back") {
		t.Fatalf("second rollback:\n%s", again)
	}

	after := f.envs(t)
	for fn, env := range after {
		for k, v := range before[fn] {
			if env[k] != v {
				t.Errorf("%s: %s not restored after rollback", fn, k)
			}
		}
	}
	var steps []string
	raw, err := os.ReadFile(f.audit)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec rotate.AuditRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		if rec.Operator == "" || rec.RotationID == "" || rec.Reason != "scheduled rotation" || len(rec.Fleet) != 3 {
			t.Errorf("audit record lacks facts: %+v", rec)
		}
		steps = append(steps, rec.Step)
	}
	if got := strings.Join(steps, ","); got != "baseline,lock,claim,backed-up,probing,update,staged,update,grace,compare,unlock,"+
		"baseline,lock,finalizing,update,completed,compare,unlock,baseline,lock,rolling-back,update,rolled-back,compare,unlock" {
		t.Errorf("audit steps %s", got)
	}
}

func TestRotateCommandRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		opts     testbed.Options
		stdin    string
		args     []string
		dropEnv  string
		wantCode int
		wantErr  string
	}{
		{name: "no mode", args: []string{"rotate"}, wantCode: exitUsage, wantErr: "--mode"},
		{name: "bad mode", args: []string{"rotate", "--mode", "yolo"}, wantCode: exitUsage, wantErr: "unknown mode"},
		{name: "no fleet", args: []string{"rotate", "--mode", "maintenance"}, dropEnv: "VALINE_FLEET_PREFIX=", wantCode: exitUsage, wantErr: "exactly one of --functions, --prefix, --tag"},
		{name: "two fleets", args: []string{"rotate", "--mode", "maintenance", "--tag", "app=valine"}, wantCode: exitUsage, wantErr: "exactly one of"},
		{name: "fleet matches nothing", args: []string{"rotate", "--mode", "maintenance", "--prefix", "pv-nothing-here-"}, wantCode: exitUsage, wantErr: "no functions match"},
		{name: "emergency not confirmed", stdin: "no\n", args: []string{"rotate", "--mode", "emergency"}, wantCode: exitUsage, wantErr: "not confirmed"},
		{name: "zero-downtime on an API ignoring the secondary", opts: testbed.Options{Misbehaviours: testbed.IgnoreSecondary},
			args: []string{"rotate", "--mode", "zero-downtime"}, wantCode: exitFailed, wantErr: "--mode maintenance"},
		{name: "maintenance on an API still accepting old tokens", opts: testbed.Options{Misbehaviours: testbed.AcceptOldTokens},
			args: []string{"rotate", "--mode", "maintenance"}, wantCode: exitFailed, wantErr: "rolled back"},
		{name: "short new secret", args: []string{"rotate", "--mode", "maintenance", "--env-stdin"}, stdin: "VALINE_NEW_SECRET=too-short\n", wantCode: exitUsage, wantErr: "shorter than 32 bytes"},
		{name: "finalize with nothing to finalize", args: []string{"finalize"}, wantCode: exitUsage, wantErr: "no grace period"},
		{name: "rollback with nothing to roll back", args: []string{"rollback"}, wantCode: exitUsage, wantErr: "nothing to roll back"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startFleet(t, tc.opts)
			env := f.env
			if tc.dropEnv != "" {
				env = nil
				for _, kv := range f.env {
					if !strings.HasPrefix(kv, tc.dropEnv) {
						env = append(env, kv)
					}
				}
			}
			if strings.Contains(tc.stdin, "VALINE_NEW_SECRET") {
				env = append(env, "VALINE_PROBE_PASSWORD="+f.w.ProbePassword)
			}
			before := f.envs(t)
			got := runCLI(t, env, tc.stdin, tc.args...)
			if got.code != tc.wantCode || !strings.Contains(got.stderr, tc.wantErr) {
				t.Fatalf("want exit %d with %q:\n%s", tc.wantCode, tc.wantErr, got)
			}
			if !sameEnvs(before, f.envs(t)) {
				t.Error("a refused command left a function changed")
			}
		})
	}
}

func TestEmergencyConfirmedAndStatusAfterAnInterruption(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	em := runCLI(t, f.env, "emergency\n", "rotate", "--mode", "emergency")
	if em.code != exitOK || !strings.Contains(em.stdout, "phase completed") {
		t.Fatalf("confirmed emergency:\n%s", em)
	}
	// Another writer drifts one function: status must say so and exit 1.
	if err := f.w.EditEnv(t.Context(), f.w.Functions[1], func(env map[string]string) {
		env[f.w.Profile.SecretVar] = "drifted-secret-value-that-is-long-enough-000"
	}); err != nil {
		t.Fatal(err)
	}
	st := runCLI(t, f.env, "", "status", "-o", "json")
	if st.code != exitFailed || !strings.Contains(st.stderr, "drifted") {
		t.Fatalf("status of a drifted fleet:\n%s", st)
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(st.stdout), &js); err != nil || js["consistent"] != false {
		t.Errorf("status JSON: %v %v", err, js["consistent"])
	}
	if strings.Contains(st.stdout, "drifted-secret-value") {
		t.Error("status printed a secret value")
	}
	refused := runCLI(t, f.env, "", "rotate", "--mode", "maintenance")
	if refused.code != exitFailed || !strings.Contains(refused.stderr, "do not agree") {
		t.Fatalf("rotating a drifted fleet:\n%s", refused)
	}
}

func TestPreflightCommand(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	before := f.envs(t)
	got := runCLI(t, f.env, "", "preflight")
	if got.code != exitOK || !strings.Contains(got.stdout, "PASS  zero-downtime") || !strings.Contains(got.stdout, "arn:aws") {
		t.Fatalf("preflight:\n%s", got)
	}
	if !sameEnvs(before, f.envs(t)) {
		t.Error("preflight left a function changed")
	}
	bad := startFleet(t, testbed.Options{Misbehaviours: testbed.IgnoreSecondary})
	got = runCLI(t, bad.env, "", "preflight")
	if got.code != exitFailed || !strings.Contains(got.stdout, "FAIL  zero-downtime") {
		t.Fatalf("preflight against an API ignoring the secondary:\n%s", got)
	}
}

func TestRotateRespectsAnotherOperatorsLock(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	backup := rotate.Backup{API: secretsmanager.NewFromConfig(f.w.AWS), Name: "valine-check/" + strings.TrimSuffix(f.w.Functions[0], "auth")} // the prefix as typed
	if _, err := backup.Lock(t.Context(), rotate.LockInfo{Holder: "alice", Operation: "rotate", Host: "ci-runner-7", PID: 99, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	before := f.envs(t)
	locked := runCLI(t, f.env, "", "rotate", "--mode", "maintenance")
	if locked.code != exitUsage || !strings.Contains(locked.stderr, "alice") || !strings.Contains(locked.stderr, "--break-lock") {
		t.Fatalf("rotate while another operator holds the lock:\n%s", locked)
	}
	if !sameEnvs(before, f.envs(t)) {
		t.Fatal("a locked-out rotate changed a function")
	}
	broken := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--break-lock")
	if broken.code != exitOK || !strings.Contains(broken.stdout, "broke the lock") {
		t.Fatalf("rotate --break-lock:\n%s", broken)
	}
}
