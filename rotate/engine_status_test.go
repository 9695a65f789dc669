package rotate_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

// After a completed rotation a writer that sends no RevisionId (or a
// redeploy) puts the old secret back on every function: the fleet agrees
// with itself, but not with the journal, and status says so per function.
func TestStatusComparesTheFleetWithTheJournal(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	out := r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
	if st := r.status(t); len(st.Mismatches) != 0 {
		t.Fatalf("a fleet just rotated mismatches its journal: %+v", st.Mismatches)
	}
	for _, fn := range r.w.Functions {
		if err := r.w.EditEnv(t.Context(), fn, func(env map[string]string) { env[r.w.Profile.SecretVar] = reveal(r.old) }); err != nil {
			t.Fatal(err)
		}
	}
	st := r.status(t)
	if !st.Drift.Consistent {
		t.Fatalf("the reverted fleet drifts: %s", st.Drift)
	}
	if len(st.Mismatches) != len(r.w.Functions) {
		t.Fatalf("%d mismatches, want one per function: %+v", len(st.Mismatches), st.Mismatches)
	}
	for _, m := range st.Mismatches {
		if m.Holds != out.Journal.OldFingerprint || m.Want != out.Journal.NewFingerprint || !strings.Contains(m.Says, "reverted by a deploy or another writer") {
			t.Errorf("mismatch %+v", m)
		}
	}
}

// A lock left by a run that is gone (on this machine) is reported as such,
// with who took it and how long ago; a live holder's is not called dead.
func TestStatusReportsALockLeftByADeadRun(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name string
		pid  int
		dead bool
	}{{"dead", 1 << 30, true}, {"alive", 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			holder := rotate.LockInfo{Holder: "arn:aws:iam::000000000000:user/alice", Operation: "rotate", Host: host, PID: tc.pid, Since: time.Now().Add(-90 * time.Minute)}
			if _, err := r.engine().Backup.Lock(t.Context(), holder); err != nil {
				t.Fatal(err)
			}
			st := r.status(t)
			if st.Lock == nil || st.Lock.Dead != tc.dead || st.Lock.Age < 89*time.Minute ||
				!strings.Contains(st.Lock.String(), "alice") || strings.Contains(st.Lock.String(), "holder is gone") != tc.dead {
				t.Fatalf("status lock: %+v (%s)", st.Lock, st.Lock)
			}
		})
	}
}
