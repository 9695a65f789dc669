// Package journal is the read side of a rotation's journal, the
// vocabulary every reader shares: modes, phases and the one phase → state
// table (PhaseHolds), the Journal itself as tags on the backup secret, and a
// Reader that needs only DescribeSecret and GetSecretValue. The journal is
// written only by package rotate; the scheduled probe and status read it
// without linking any code that writes to AWS. It imports nothing of the
// project but the secret vocabulary.
package journal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Verdicts are check names and the probes' outcome words ("pass", "fail",
// "warn", "skip", "error").
type Verdicts map[string]string

// outcomes are the words a Verdicts value may hold.
var outcomes = []string{"pass", "fail", "warn", "skip", "error"}

// Findings are the names of the checks that failed, sorted.
func (v Verdicts) Findings() []string {
	var names []string
	for name, o := range v {
		if o == "fail" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

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
	// Baseline is the security battery's verdicts (check name → the probes'
	// outcome word: pass, fail, warn, skip, error) against the secret in
	// force before the operation in progress made its first write: what
	// the verification after it is judged against (":baseline").
	Baseline Verdicts
	// Source is the secret's source of truth the rotation writes before
	// the fleet (":source"; the zero Source reads as LambdaEnv), Delivery
	// how the fleet gets it (":delivery"; "" reads as DeliveryEnv) and
	// CacheTTL, for DeliveryRuntime, how long the functions cache it
	// (":cache-ttl"). finalize, rollback, status and a resumed run use
	// them, whatever their own flags say.
	Source   Source
	Delivery Delivery
	CacheTTL time.Duration
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

// Prefix starts every journal tag key.
const Prefix = "valine-check:"

// Journal tag keys, without Prefix.
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
	tagSource        = "source"
	tagDelivery      = "delivery"
	tagCacheTTL      = "cache-ttl"
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

// Tags returns the journal as tag values by key (without Prefix); an empty
// value means the tag is to be removed. It refuses a journal that would not
// read back (an id, mode or phase that is not valid).
func (j Journal) Tags() (map[string]string, error) {
	if j.ID == "" || !tagSafe(j.ID) {
		return nil, fmt.Errorf("journal: rotation id %q is empty or not a valid tag value", j.ID)
	}
	if _, err := ParseMode(string(j.Mode)); err != nil {
		return nil, fmt.Errorf("journal of %s: %w", j.ID, err)
	}
	if _, err := ParsePhase(string(j.Phase)); err != nil {
		return nil, fmt.Errorf("journal of %s: %w", j.ID, err)
	}
	if !tagSafe(sourceTag(j.Source)) {
		return nil, fmt.Errorf("journal of %s: source %q is not a valid tag value", j.ID, j.Source)
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
		tagSource:        sourceTag(j.Source),
		tagDelivery:      deliveryTag(j.Delivery),
		tagCacheTTL:      ttlTag(j.CacheTTL),
	}, nil
}

// batteryPrefix is left out of the baseline tag, which must fit in 256
// characters: "alg-none=pass hs384-hs512=fail …".
const batteryPrefix = "security-"

// encodeBaseline writes a baseline as "name=outcome" pairs, sorted.
func encodeBaseline(b Verdicts) string {
	parts := make([]string, 0, len(b))
	for _, name := range slices.Sorted(maps.Keys(b)) {
		parts = append(parts, strings.TrimPrefix(name, batteryPrefix)+"="+string(b[name]))
	}
	return strings.Join(parts, " ")
}

// decodeBaseline reads encodeBaseline's form; nil for "".
func decodeBaseline(s string) (Verdicts, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	b := Verdicts{}
	for _, part := range strings.Fields(s) {
		name, outcome, ok := strings.Cut(part, "=")
		if !slices.Contains(outcomes, outcome) {
			ok = false
		}
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not check=outcome", part)
		}
		b[batteryPrefix+name] = outcome
	}
	return b, nil
}

// Which names one of a rotation's secrets: what a phase puts where.
type Which int

// The secrets of a rotation.
const (
	WhichNone Which = iota // no value (the variable is absent)
	WhichOld               // the secret the rotation replaces
	WhichNew               // the secret it puts in force
)

// PhaseHolds is the state every function holds in phase p of a rotation:
// which secret is the primary and which the secondary. It is the one fact
// resumption relies on, and what status compares the fleet with.
func PhaseHolds(p Phase) (primary, secondary Which) {
	switch p {
	case PhaseProbing:
		return WhichOld, WhichNew
	case PhaseStaged, PhaseGrace:
		return WhichNew, WhichOld
	case PhaseApplied, PhaseFinalizing, PhaseCompleted:
		return WhichNew, WhichNone
	default: // started, backed-up, rolling-back, rolled-back, abandoned
		return WhichOld, WhichNone
	}
}

// Steady reports whether a rotation rests in phase p (a grace period, or
// over): the backup then holds its secrets, and a token signed with the
// secret it retired has a verdict (accepted in grace, refused otherwise).
// In the phases between, functions change under a reader.
func Steady(p Phase) bool {
	return p == PhaseGrace || p.Terminal()
}

// SignsWithNew reports whether, once every function holds what phase p
// requires, fresh tokens are signed with the rotation's new secret (rather
// than the old one).
func SignsWithNew(p Phase) bool {
	primary, _ := PhaseHolds(p)
	return primary == WhichNew
}

// sourceTag is the source's tag value: "" for the functions' environment
// (so a journal written before sources existed reads the same).
func sourceTag(s Source) string {
	if !s.IsStore() {
		return ""
	}
	return s.String()
}

// deliveryTag is the delivery's tag value: "" for DeliveryEnv.
func deliveryTag(d Delivery) string {
	if d == DeliveryEnv {
		return ""
	}
	return string(d)
}

// ttlTag is the cache TTL's tag value: "" for none.
func ttlTag(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}
