package rotate_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/rotate"
)

// What an honest check would refuse is refused before the first write:
// no function update, no backup, no journal, no lock (issue 9, item 4).
func TestEngineRefusesBeforeTheFirstWrite(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// setup may change the rig and returns the engine mods and options.
		setup func(t *testing.T, r *fleetRig) ([]func(*rotate.Engine), rotate.RotateOptions)
		mode  journal.Mode
		want  error
		says  string
	}{
		{name: "a secret variable that holds a URL", mode: journal.ModeMaintenance, want: rotate.ErrSecretShape, says: "looks like a URL",
			setup: func(t *testing.T, r *fleetRig) ([]func(*rotate.Engine), rotate.RotateOptions) {
				p, err := profile.Resolve("runbook", profile.Profile{SecretVar: "DATABASE_URL"})
				if err != nil {
					t.Fatal(err)
				}
				return []func(*rotate.Engine){func(e *rotate.Engine) { e.Profile = p }}, rotate.RotateOptions{}
			}},
		{name: "an audit file that cannot be written", mode: journal.ModeMaintenance, want: rotate.ErrAuditUnwritable,
			setup: func(t *testing.T, r *fleetRig) ([]func(*rotate.Engine), rotate.RotateOptions) {
				bad := &rotate.AuditLog{Path: filepath.Join(t.TempDir(), "no-such-dir", "audit.jsonl")}
				return []func(*rotate.Engine){func(e *rotate.Engine) { e.Audit = bad }}, rotate.RotateOptions{}
			}},
		{name: "a new secret with whitespace", mode: journal.ModeMaintenance, want: rotate.ErrSecretShape, says: "whitespace",
			setup: func(t *testing.T, r *fleetRig) ([]func(*rotate.Engine), rotate.RotateOptions) {
				return nil, rotate.RotateOptions{New: secret.NewSecret(strings.Repeat("k", 40) + "\n")}
			}},
		{name: "a new secret that is not UTF-8", mode: journal.ModeMaintenance, want: rotate.ErrSecretShape, says: "UTF-8",
			setup: func(t *testing.T, r *fleetRig) ([]func(*rotate.Engine), rotate.RotateOptions) {
				return nil, rotate.RotateOptions{New: secret.NewSecret(strings.Repeat("k", 40) + "\xff\xfe")}
			}},
		{name: "the secret a rollback just withdrew", mode: journal.ModeMaintenance, want: rotate.ErrReusedSecret,
			setup: func(t *testing.T, r *fleetRig) ([]func(*rotate.Engine), rotate.RotateOptions) {
				out := r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
				_, withdrawn := r.journalSecrets(t, out.Journal)
				if _, err := r.rollback(t, r.engine()); err != nil {
					t.Fatal(err)
				}
				r.rebase(t)
				return nil, rotate.RotateOptions{New: withdrawn}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			mods, opt := tc.setup(t, r)
			writes, had := r.awsWrites(), r.status(t)
			_, err := r.rotate(t, r.engine(mods...), tc.mode, opt)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Rotate: %v, want %v saying %q", err, tc.want, tc.says)
			}
			if n := r.awsWrites() - writes; n != 0 {
				t.Errorf("%d AWS writes before the refusal", n)
			}
			if st := r.status(t); st.Journal.ID != had.Journal.ID || st.Journal.Phase != had.Journal.Phase {
				t.Errorf("the refusal changed the journal: %s %s → %s %s", had.Journal.ID, had.Journal.Phase, st.Journal.ID, st.Journal.Phase)
			}
			r.wantEnvsEqual(t, r.before)
			r.wantNoLeak(t, "the error", err.Error())
		})
	}
}

// --dry-run reports the 4 KB overflow the real run would hit, for a
// maintenance rotation too (a longer new primary than the current one).
func TestEngineDryRunReportsAnOverflow(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	// Fill the first function to 10 bytes short of the limit: a 44-byte
	// primary replacing the 44-byte one fits, a 100-byte one does not.
	env, _ := envOf(t, r.w, r.w.Functions[0])
	room := rotate.MaxEnvBytes - lambdaSize(t, env) - len(`,"PAD":""`)
	if err := r.w.EditEnv(t.Context(), r.w.Functions[0], func(env map[string]string) { env["PAD"] = strings.Repeat("p", room-10) }); err != nil {
		t.Fatal(err)
	}
	r.rebase(t)
	long := secret.NewSecret(strings.Repeat("L", 100))
	out, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{DryRun: true, New: long})
	if !errors.Is(err, rotate.ErrEnvTooLarge) || !out.DryRun {
		t.Fatalf("dry run with a new secret that overflows: %v (dry run %v)", err, out.DryRun)
	}
	if _, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{DryRun: true}); err != nil {
		t.Errorf("dry run with a generated secret that fits: %v", err)
	}
}

// lambdaSize is the environment's JSON size, without HTML escaping.
func lambdaSize(t *testing.T, env map[string]string) int { t.Helper(); return jsonSize(t, env) }
