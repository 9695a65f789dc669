package rotate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/valine/valine-check/probes"
)

// Mode is how a rotation treats the tokens signed with the old secret.
type Mode string

// The runbook's approaches.
const (
	// ModeZeroDowntime keeps the old secret as the secondary for a grace
	// period, so tokens signed with it stay valid until they expire.
	ModeZeroDowntime Mode = "zero-downtime"
	// ModeMaintenance replaces the secret at once: old tokens are refused.
	ModeMaintenance Mode = "maintenance"
	// ModeEmergency is maintenance now, after an explicit confirmation.
	ModeEmergency Mode = "emergency"
)

// Modes lists every mode, in the order a help text shows them.
var Modes = []Mode{ModeZeroDowntime, ModeMaintenance, ModeEmergency}

// ParseMode returns the mode named s, or an error naming the valid ones.
func ParseMode(s string) (Mode, error) {
	if m := Mode(s); slices.Contains(Modes, m) {
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (want %s)", s, joinValues(Modes))
}

// Phase is how far a rotation got. Each phase says what every function
// holds, so a run that finds a journal in a phase knows where to resume.
type Phase string

// A rotation's phases.
const (
	PhaseStarted     Phase = "started"
	PhaseBackedUp    Phase = "backed-up"
	PhaseProbing     Phase = "probing"
	PhaseStaged      Phase = "staged"
	PhaseGrace       Phase = "grace"
	PhaseApplied     Phase = "applied"
	PhaseFinalizing  Phase = "finalizing"
	PhaseCompleted   Phase = "completed"
	PhaseRollingBack Phase = "rolling-back"
	PhaseRolledBack  Phase = "rolled-back"
	PhaseAbandoned   Phase = "abandoned"
)

// Phases lists every phase, roughly in the order a rotation goes through them.
var Phases = []Phase{
	PhaseStarted, PhaseBackedUp, PhaseProbing, PhaseStaged, PhaseGrace, PhaseApplied,
	PhaseFinalizing, PhaseCompleted, PhaseRollingBack, PhaseRolledBack, PhaseAbandoned,
}

// ParsePhase returns the phase named s, or an error naming the valid ones.
func ParsePhase(s string) (Phase, error) {
	if p := Phase(s); slices.Contains(Phases, p) {
		return p, nil
	}
	return "", fmt.Errorf("unknown phase %q (want %s)", s, joinValues(Phases))
}

// Terminal reports whether a rotation in phase p is over (completed,
// rolled back or abandoned), so a new one may start.
func (p Phase) Terminal() bool {
	return p == PhaseCompleted || p == PhaseRolledBack || p == PhaseAbandoned
}

func joinValues[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// Journal is a rotation's state, kept as tags on the backup secret so the
// next run (or `status`) reads it: "valine-check:rotation-id", ":mode",
// ":phase", ":old", ":new", ":grace-deadline", ":started-at",
// ":updated-at", ":reason", ":baseline" and ":verification". Times are RFC
// 3339 in UTC. It holds fingerprints only, never a secret.
type Journal struct {
	ID                             string // e.g. "rot-20261129T031500Z-1a2b3c", see NewRotationID
	Mode                           Mode
	Phase                          Phase
	OldFingerprint, NewFingerprint string
	GraceDeadline                  time.Time // zero unless zero-downtime
	StartedAt, UpdatedAt           time.Time
	// Reason is the operator's --reason. WriteJournal stores it through
	// SanitizeTagValue, so ReadJournal returns the sanitised text.
	Reason string
	// Baseline is the security battery's verdicts against the secret in
	// force before the operation in progress made its first write: what
	// the verification after it is judged against (":baseline").
	Baseline probes.Baseline
	// Verification is "" while nothing is outstanding, VerificationPending
	// when the last verification could not tell (a re-run verifies again)
	// and VerificationFailed when it failed and the change was left in
	// place (an emergency, or --no-rollback) (":verification").
	Verification string
}

// The values of Journal.Verification.
const (
	VerificationPending = "pending"
	VerificationFailed  = "failed"
)

// ErrBadJournal is returned when the backup's journal tags cannot be read
// back as a Journal (a missing id, mode or phase, an unknown value, a bad
// time); the error names the tag.
var ErrBadJournal = errors.New("unreadable rotation journal")

// journalPrefix starts every journal tag key.
const journalPrefix = "valine-check:"

// Journal tag keys, without journalPrefix.
const (
	tagID            = "rotation-id"
	tagMode          = "mode"
	tagPhase         = "phase"
	tagOld           = "old"
	tagNew           = "new"
	tagGraceDeadline = "grace-deadline"
	tagStartedAt     = "started-at"
	tagUpdatedAt     = "updated-at"
	tagReason        = "reason"
	tagBaseline      = "baseline"
	tagVerification  = "verification"
)

// maxTagValue is AWS's limit on a tag value, in characters.
const maxTagValue = 256

// NewRotationID returns a rotation id: "rot-", now in UTC to the second
// and 6 random hex digits, e.g. "rot-20261129T031500Z-1a2b3c".
func NewRotationID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "rot-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// SanitizeTagValue makes s a valid AWS tag value: every character other
// than a letter, a digit, a space or one of _ . : / = + - @ becomes a
// space, runs of spaces become one, the ends are trimmed and the result is
// cut to 256 characters.
func SanitizeTagValue(s string) string {
	var b strings.Builder
	n := 0
	pendingSpace := false
	for _, c := range s {
		if !tagRune(c) || unicode.Is(unicode.Z, c) {
			pendingSpace = n > 0
			continue
		}
		if pendingSpace {
			if n+2 > maxTagValue {
				break
			}
			b.WriteByte(' ')
			n++
			pendingSpace = false
		}
		if n+1 > maxTagValue {
			break
		}
		b.WriteRune(c)
		n++
	}
	return b.String()
}

// tagRune reports whether AWS allows c in a tag key or value.
func tagRune(c rune) bool {
	return unicode.IsLetter(c) || unicode.IsNumber(c) || unicode.Is(unicode.Z, c) || strings.ContainsRune("_.:/=+-@", c)
}

// tagSafe reports whether s is a valid tag value as it is.
func tagSafe(s string) bool {
	if len([]rune(s)) > maxTagValue {
		return false
	}
	for _, c := range s {
		if !tagRune(c) {
			return false
		}
	}
	return true
}

// tags returns the journal as tag values by key (without the prefix); an
// empty value means the tag is to be removed.
func (j Journal) tags() (map[string]string, error) {
	if j.ID == "" || !tagSafe(j.ID) {
		return nil, fmt.Errorf("journal: rotation id %q is empty or not a valid tag value", j.ID)
	}
	if _, err := ParseMode(string(j.Mode)); err != nil {
		return nil, fmt.Errorf("journal of %s: %w", j.ID, err)
	}
	if _, err := ParsePhase(string(j.Phase)); err != nil {
		return nil, fmt.Errorf("journal of %s: %w", j.ID, err)
	}
	for _, fp := range []string{j.OldFingerprint, j.NewFingerprint} {
		if !tagSafe(fp) {
			return nil, fmt.Errorf("journal of %s: fingerprint %q is not a valid tag value", j.ID, fp)
		}
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return map[string]string{
		tagID:            j.ID,
		tagMode:          string(j.Mode),
		tagPhase:         string(j.Phase),
		tagOld:           j.OldFingerprint,
		tagNew:           j.NewFingerprint,
		tagGraceDeadline: when(j.GraceDeadline),
		tagStartedAt:     when(j.StartedAt),
		tagUpdatedAt:     when(j.UpdatedAt),
		tagReason:        SanitizeTagValue(j.Reason),
		tagBaseline:      encodeBaseline(j.Baseline),
		tagVerification:  j.Verification,
	}, nil
}

// batteryPrefix is left out of the baseline tag, which must fit in 256
// characters: "alg-none=pass hs384-hs512=fail …".
const batteryPrefix = "security-"

// encodeBaseline writes a baseline as "name=outcome" pairs, sorted.
func encodeBaseline(b probes.Baseline) string {
	parts := make([]string, 0, len(b))
	for _, name := range slices.Sorted(maps.Keys(b)) {
		parts = append(parts, strings.TrimPrefix(name, batteryPrefix)+"="+string(b[name]))
	}
	return strings.Join(parts, " ")
}

// decodeBaseline reads encodeBaseline's form; nil for "".
func decodeBaseline(s string) (probes.Baseline, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	b := probes.Baseline{}
	for _, part := range strings.Fields(s) {
		name, outcome, ok := strings.Cut(part, "=")
		switch probes.Outcome(outcome) {
		case probes.Pass, probes.Fail, probes.Warn, probes.Skip, probes.Error:
		default:
			ok = false
		}
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not check=outcome", part)
		}
		b[batteryPrefix+name] = probes.Outcome(outcome)
	}
	return b, nil
}

// WriteJournal records j as tags on the backup secret: empty fields are
// untagged, the rest tagged. It creates nothing: when the backup secret
// does not exist yet it returns ErrNoBackup (Store first). Stale tags are
// removed before the new ones are written, so a crash in between leaves
// the previous phase, never the new phase with another rotation's fields.
func (b Backup) WriteJournal(ctx context.Context, j Journal) error {
	values, err := j.tags()
	if err != nil {
		return err
	}
	have, exists, err := b.journalTags(ctx)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("writing the journal of %s: %w: secret %s does not exist", j.ID, ErrNoBackup, b.Name)
	}
	var remove []string
	var set []types.Tag
	for _, k := range slices.Sorted(maps.Keys(values)) {
		switch _, present := have[k]; {
		case values[k] == "" && present:
			remove = append(remove, journalPrefix+k)
		case values[k] != "":
			set = append(set, types.Tag{Key: aws.String(journalPrefix + k), Value: aws.String(values[k])})
		}
	}
	if len(remove) > 0 {
		if _, err := b.API.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(b.Name), TagKeys: remove}); err != nil {
			return fmt.Errorf("writing the journal of %s on %s: %w", j.ID, b.Name, err)
		}
	}
	if _, err := b.API.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(b.Name), Tags: set}); err != nil {
		return fmt.Errorf("writing the journal of %s on %s: %w", j.ID, b.Name, err)
	}
	return nil
}

// ReadJournal returns the journal recorded on the backup secret; false
// when the secret does not exist or carries no journal tags. A journal
// that cannot be read back is an error wrapping ErrBadJournal.
func (b Backup) ReadJournal(ctx context.Context) (Journal, bool, error) {
	tags, exists, err := b.journalTags(ctx)
	if err != nil || !exists || len(tags) == 0 {
		return Journal{}, false, err
	}
	bad := func(format string, args ...any) (Journal, bool, error) {
		return Journal{}, false, fmt.Errorf("%w on %s: %s", ErrBadJournal, b.Name, fmt.Sprintf(format, args...))
	}
	j := Journal{
		ID:             tags[tagID],
		OldFingerprint: tags[tagOld],
		NewFingerprint: tags[tagNew],
		Reason:         tags[tagReason],
	}
	if j.ID == "" {
		return bad("no %s tag", journalPrefix+tagID)
	}
	if j.Mode, err = ParseMode(tags[tagMode]); err != nil {
		return bad("%s: %v", journalPrefix+tagMode, err)
	}
	if j.Phase, err = ParsePhase(tags[tagPhase]); err != nil {
		return bad("%s: %v", journalPrefix+tagPhase, err)
	}
	if j.Baseline, err = decodeBaseline(tags[tagBaseline]); err != nil {
		return bad("%s: %v", journalPrefix+tagBaseline, err)
	}
	switch j.Verification = tags[tagVerification]; j.Verification {
	case "", VerificationPending, VerificationFailed:
	default:
		return bad("%s: unknown value %q", journalPrefix+tagVerification, j.Verification)
	}
	for k, t := range map[string]*time.Time{tagGraceDeadline: &j.GraceDeadline, tagStartedAt: &j.StartedAt, tagUpdatedAt: &j.UpdatedAt} {
		if tags[k] == "" {
			continue
		}
		if *t, err = time.Parse(time.RFC3339Nano, tags[k]); err != nil {
			return bad("%s: %v", journalPrefix+k, err)
		}
	}
	return j, true, nil
}

// journalTags returns the backup's journal tags by key without the
// prefix, and whether the secret exists.
func (b Backup) journalTags(ctx context.Context) (map[string]string, bool, error) {
	out, err := b.API.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(b.Name)})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading the journal on %s: %w", b.Name, err)
	}
	tags := map[string]string{}
	for _, t := range out.Tags {
		if k, ok := strings.CutPrefix(aws.ToString(t.Key), journalPrefix); ok {
			tags[k] = aws.ToString(t.Value)
		}
	}
	return tags, true, nil
}
