package rotate_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

// One fleet, one journal and lock, however it was selected: a second
// backup (the same functions typed another way) is refused before any
// write, naming both backups.
func TestEngineRefusesAFleetOwnedByAnotherBackup(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
	other := "valine-eng-other-" + rand.Text()[:10]
	asOther := func(e *rotate.Engine) { e.Backup.Name = other }
	writes := r.awsWrites()
	for _, mode := range []journal.Mode{journal.ModeMaintenance, journal.ModeZeroDowntime} {
		_, err := r.rotate(t, r.engine(asOther), mode, rotate.RotateOptions{})
		if !errors.Is(err, rotate.ErrFleetOwned) || !strings.Contains(err.Error(), r.backupName) || !strings.Contains(err.Error(), other) {
			t.Fatalf("Rotate(%s) through another backup: %v, want ErrFleetOwned naming both", mode, err)
		}
	}
	if _, err := r.rollback(t, r.engine(asOther)); !errors.Is(err, rotate.ErrFleetOwned) && !errors.Is(err, rotate.ErrNothingToRollBack) {
		t.Errorf("Rollback through another backup: %v", err)
	}
	if n := r.awsWrites() - writes; n != 0 {
		t.Errorf("%d AWS writes through the other backup", n)
	}
	// The owner rotates on.
	r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
}

// Two operators selecting the same functions two ways at the same moment:
// at most one goes ahead, and whoever is told "completed" left the fleet on
// its own journal's secret.
func TestEngineTwoSelectorsAtOnce(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	backups := []string{r.backupName, "valine-eng-alias-" + rand.Text()[:10]}
	var wg sync.WaitGroup
	outs := make([]rotate.Outcome, 2)
	errs := make([]error, 2)
	for i, name := range backups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = r.engine(func(e *rotate.Engine) { e.Backup.Name = name }).Rotate(t.Context(), journal.ModeMaintenance, rotate.RotateOptions{})
		}()
	}
	wg.Wait()
	done := 0
	for i := range errs {
		switch {
		case errs[i] == nil:
			done++
			st, err := r.engine(func(e *rotate.Engine) { e.Backup.Name = backups[i] }).Status(t.Context())
			if err != nil || len(st.Mismatches) != 0 || !st.Drift.Consistent {
				t.Errorf("operator %d was told completed, but the fleet does not hold its journal's secret: %v %+v %s", i, err, st.Mismatches, st.Drift)
			}
		case !errors.Is(errs[i], rotate.ErrFleetOwned) && !errors.Is(errs[i], rotate.ErrLocked):
			t.Errorf("operator %d: %v, want success, ErrFleetOwned or ErrLocked", i, errs[i])
		}
	}
	if done > 1 {
		t.Errorf("both operators rotated one fleet")
	}
	_ = outs
}
