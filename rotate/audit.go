package rotate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/probes"
)

// AuditRecord is one step of a rotation, as appended to the audit file: one
// JSON object per line. It holds fingerprints, never a secret value.
type AuditRecord struct {
	Time           time.Time       `json:"time"`
	Operator       string          `json:"operator"`
	RotationID     string          `json:"rotationId"`
	Step           string          `json:"step"`
	Mode           journal.Mode    `json:"mode,omitempty"`
	Reason         string          `json:"reason,omitempty"`
	Fleet          []string        `json:"fleet"`
	OldFingerprint string          `json:"oldFingerprint,omitempty"`
	NewFingerprint string          `json:"newFingerprint,omitempty"`
	Outcome        string          `json:"outcome"`
	Message        string          `json:"message,omitempty"`
	Verification   *probes.Summary `json:"verification,omitempty"`
	Failed         []string        `json:"failedChecks,omitempty"`
	// Baseline is, on the "baseline" step, the security battery's verdicts
	// against the secret in force before the first write.
	Baseline probes.Baseline `json:"baseline,omitempty"`
	// The gate's judgement of a verification (see probes.Judge), by check:
	// failures the change caused, checks that could not tell, findings the
	// baseline already had, and other findings not counted.
	Caused       []string `json:"causedByChange,omitempty"`
	CouldNotTell []string `json:"couldNotTell,omitempty"`
	PreExisting  []string `json:"preExistingFindings,omitempty"`
	Findings     []string `json:"otherFindings,omitempty"`
	// Split is, on an "update" step, how long the fleet was split.
	Split *Split `json:"split,omitempty"`
}

// ErrAuditUnwritable is returned, before any AWS write, when the audit
// file cannot be opened for appending: a change must not run without its
// trail.
var ErrAuditUnwritable = errors.New("the audit file cannot be written")

// AuditLog appends records to a file, created with mode 0600. A nil
// *AuditLog discards records, so the engine needs no special case.
type AuditLog struct {
	Path string
	mu   sync.Mutex
}

// Check opens the file for appending (creating it, mode 0600) and closes
// it again: an operation calls it before its first write to AWS.
func (a *AuditLog) Check() error {
	if a == nil || a.Path == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuditUnwritable, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrAuditUnwritable, err)
	}
	return nil
}

// Append writes one record as a JSON line and syncs it to disk: a record
// that is not on disk when the process dies did not happen.
func (a *AuditLog) Append(rec AuditRecord) error {
	if a == nil || a.Path == "" {
		return nil
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding audit record: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening audit file: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing audit file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing audit file: %w", err)
	}
	return f.Close()
}
