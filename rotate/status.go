package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Status is what `valine-check status` shows: the fleet, whether it
// agrees, the journalled rotation and the backup.
type Status struct {
	Fleet   FleetState
	Drift   Drift
	Journal Journal
	// HasJournal is false when the backup has no rotation journal.
	HasJournal bool
	// BackupCurrent and BackupPrevious are the backup's fingerprints ("" when absent).
	BackupCurrent, BackupPrevious string
	// GraceRemaining is left of a grace period in progress (0 when none or over).
	GraceRemaining time.Duration
	// JournalError says why the journal could not be read ("" when it could):
	// the fleet is still shown.
	JournalError string
}

// Status reads the fleet, the journal and the backup, changing nothing.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	fs, err := Inspect(ctx, e.Lambda, e.Fleet, e.Profile, e.concurrency())
	if err != nil {
		return Status{}, fmt.Errorf("inspecting the fleet: %w", err)
	}
	st := Status{Fleet: fs, Drift: fs.Drift()}
	if st.Journal, st.HasJournal, err = e.Backup.ReadJournal(ctx); err != nil && !errors.Is(err, ErrNoBackup) {
		st.JournalError = err.Error()
	}
	if cur, err := e.Backup.Current(ctx); err == nil {
		st.BackupCurrent = cur.Fingerprint()
	} else if !errors.Is(err, ErrNoBackup) && !errors.Is(err, ErrBadBackup) {
		return st, fmt.Errorf("reading backup %s: %w", e.Backup.Name, err)
	}
	if prev, err := e.Backup.Previous(ctx); err == nil {
		st.BackupPrevious = prev.Fingerprint()
	}
	if st.HasJournal && st.Journal.Phase == PhaseGrace {
		st.GraceRemaining = max(0, st.Journal.GraceDeadline.Sub(e.now()))
	}
	return st, nil
}

// Unfinished reports whether the journal shows a rotation stopped mid-way
// (anything but a grace period, which is a state of its own), or cannot be
// read at all.
func (s Status) Unfinished() bool {
	return s.JournalError != "" || s.HasJournal && !s.Journal.Phase.Terminal() && s.Journal.Phase != PhaseGrace
}
