package rotate_test

import (
	"errors"
	"maps"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

// storedBackup returns a Backup whose secret exists (old and new stored).
func storedBackup(t *testing.T) (rotate.Backup, *secretsmanager.Client) {
	t.Helper()
	_, b, c := newBackup(t)
	if err := b.Store(t.Context(), mustSecret(t), mustSecret(t)); err != nil {
		t.Fatalf("Store: %v", err)
	}
	return b, c
}

func secretTags(t *testing.T, c *secretsmanager.Client, name string) map[string]string {
	t.Helper()
	d, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	m := map[string]string{}
	for _, tag := range d.Tags {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}

func sameJournal(a, b journal.Journal) bool {
	return a.ID == b.ID && a.Mode == b.Mode && a.Phase == b.Phase &&
		a.OldFingerprint == b.OldFingerprint && a.NewFingerprint == b.NewFingerprint &&
		a.GraceDeadline.Equal(b.GraceDeadline) && a.StartedAt.Equal(b.StartedAt) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		a.Reason == b.Reason && maps.Equal(a.Baseline, b.Baseline) && a.Verification == b.Verification
}

func TestJournalRoundTrip(t *testing.T) {
	t.Parallel()
	b, c := storedBackup(t)
	// Another tool's tag on the same secret must survive journal writes.
	if _, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{SecretId: aws.String(b.Name),
		Tags: []smtypes.Tag{{Key: aws.String("owner"), Value: aws.String("platform")}}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	cet := time.FixedZone("CET", 3600)
	started := time.Date(2026, 11, 29, 4, 15, 0, 123456789, cet)
	full := journal.Journal{
		ID:             journal.NewRotationID(started),
		Mode:           journal.ModeZeroDowntime,
		Phase:          journal.PhaseGrace,
		OldFingerprint: "sha256:3f9a1c2e",
		NewFingerprint: "sha256:0b1c2d3e",
		GraceDeadline:  started.Add(7 * 24 * time.Hour),
		StartedAt:      started,
		UpdatedAt:      started.Add(90 * time.Second),
		Reason:         "quarterly rotation, ticket OPS-42",
		Baseline: journal.Verdicts{"security-alg-none": "pass", "security-hs384-hs512": "fail",
			"security-no-exp": "fail", "security-tampered-signature": "pass", "security-empty-key": "pass",
			"security-expired": "pass", "security-refresh-as-access": "skip"},
		Verification: journal.VerificationPending,
	}
	fullRead := full
	fullRead.Reason = "quarterly rotation ticket OPS-42" // the comma is not tag-safe
	later := journal.Journal{
		ID:             journal.NewRotationID(started.Add(time.Hour)),
		Mode:           journal.ModeMaintenance,
		Phase:          journal.PhaseApplied,
		OldFingerprint: "sha256:0b1c2d3e",
		NewFingerprint: "sha256:99aabbcc",
		StartedAt:      started.Add(time.Hour),
	}
	cases := []struct {
		name     string
		write    journal.Journal
		want     journal.Journal
		wantTags map[string]string
	}{
		{
			name: "every field", write: full, want: fullRead,
			wantTags: map[string]string{
				"owner":                       "platform",
				"valine-check:rotation-id":    full.ID,
				"valine-check:mode":           "zero-downtime",
				"valine-check:phase":          "grace",
				"valine-check:old":            "sha256:3f9a1c2e",
				"valine-check:new":            "sha256:0b1c2d3e",
				"valine-check:grace-deadline": "2026-12-06T03:15:00.123456789Z",
				"valine-check:started-at":     "2026-11-29T03:15:00.123456789Z",
				"valine-check:updated-at":     "2026-11-29T03:16:30.123456789Z",
				"valine-check:reason":         "quarterly rotation ticket OPS-42",
				"valine-check:baseline": "alg-none=pass empty-key=pass expired=pass hs384-hs512=fail no-exp=fail " +
					"refresh-as-access=skip tampered-signature=pass",
				"valine-check:verification": "pending",
			},
		},
		{
			name: "empty fields are untagged", write: later, want: later,
			wantTags: map[string]string{
				"owner":                    "platform",
				"valine-check:rotation-id": later.ID,
				"valine-check:mode":        "maintenance",
				"valine-check:phase":       "applied",
				"valine-check:old":         "sha256:0b1c2d3e",
				"valine-check:new":         "sha256:99aabbcc",
				"valine-check:started-at":  "2026-11-29T04:15:00.123456789Z",
			},
		},
	}
	for _, tc := range cases { // in order: the second overwrites the first
		if err := b.WriteJournal(t.Context(), tc.write); err != nil {
			t.Fatalf("%s: WriteJournal: %v", tc.name, err)
		}
		got, ok, err := b.ReadJournal(t.Context())
		if err != nil || !ok {
			t.Fatalf("%s: ReadJournal = %v, %v", tc.name, ok, err)
		}
		if !sameJournal(got, tc.want) {
			t.Errorf("%s: ReadJournal = %+v, want %+v", tc.name, got, tc.want)
		}
		if tags := secretTags(t, c, b.Name); !maps.Equal(tags, tc.wantTags) {
			t.Errorf("%s: tags = %v, want %v", tc.name, tags, tc.wantTags)
		}
	}
}

func TestSanitizeTagValue(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"allowed characters kept", "Rotate: a_b.c/d=e+f-g@h 42", "Rotate: a_b.c/d=e+f-g@h 42"},
		{"forbidden characters become spaces", "leak (INC-7), see #ops; now!", "leak INC-7 see ops now"},
		{"control characters and runs of spaces", "\tfirst line\n\nsecond   line\r\n", "first line second line"},
		{"letters of any script kept", "Müller rotiert ключ – 鍵", "Müller rotiert ключ 鍵"},
		{"nothing allowed", "()[]{}!?#", ""},
		{"cut to 256 characters", strings.Repeat("é", 300), strings.Repeat("é", 256)},
		{"no trailing space after the cut", strings.Repeat("a", 255) + " b", strings.Repeat("a", 255)},
	}
	tagSafe := regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := journal.SanitizeTagValue(tc.in)
			if got != tc.want {
				t.Errorf("SanitizeTagValue(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if !tagSafe.MatchString(got) || utf8.RuneCountInString(got) > 256 {
				t.Errorf("SanitizeTagValue(%q) = %q is not a valid AWS tag value", tc.in, got)
			}
		})
	}
}

func TestJournalStoresASanitisedReason(t *testing.T) {
	t.Parallel()
	b, c := storedBackup(t)
	reason := "Leaked in #incident-42 (see https://wiki/x?y=1);\nrotate NOW! " + strings.Repeat("x", 300)
	j := journal.Journal{ID: journal.NewRotationID(time.Now()), Mode: journal.ModeEmergency, Phase: journal.PhaseStarted, Reason: reason}
	if err := b.WriteJournal(t.Context(), j); err != nil {
		t.Fatalf("WriteJournal: %v", err)
	}
	got, ok, err := b.ReadJournal(t.Context())
	if err != nil || !ok {
		t.Fatalf("ReadJournal = %v, %v", ok, err)
	}
	want := journal.SanitizeTagValue(reason)
	if got.Reason != want || !strings.HasPrefix(want, "Leaked in incident-42 see https://wiki/x y=1 rotate NOW x") {
		t.Errorf("Reason = %q, want %q", got.Reason, want)
	}
	if tag := secretTags(t, c, b.Name)["valine-check:reason"]; tag != want || utf8.RuneCountInString(tag) != 256 {
		t.Errorf("reason tag = %q (%d characters), want %q", tag, utf8.RuneCountInString(tag), want)
	}
}

func TestJournalAbsent(t *testing.T) {
	t.Parallel()
	b, _ := storedBackup(t)
	missing := rotate.Backup{API: b.API, Name: b.Name + "-missing"}
	cases := []struct {
		name string
		b    rotate.Backup
	}{
		{"secret missing", missing},
		{"secret without journal tags", b},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j, ok, err := tc.b.ReadJournal(t.Context())
			if err != nil || ok || !reflect.DeepEqual(j, journal.Journal{}) {
				t.Errorf("ReadJournal = %+v, %v, %v; want nothing, false, nil", j, ok, err)
			}
		})
	}
	t.Run("write creates nothing", func(t *testing.T) {
		t.Parallel()
		j := journal.Journal{ID: "rot-x", Mode: journal.ModeMaintenance, Phase: journal.PhaseStarted}
		if err := missing.WriteJournal(t.Context(), j); !errors.Is(err, rotate.ErrNoBackup) {
			t.Fatalf("WriteJournal on a missing secret = %v, want ErrNoBackup", err)
		}
		if _, ok, err := missing.ReadJournal(t.Context()); ok || err != nil {
			t.Errorf("after WriteJournal, ReadJournal = %v, %v; want false, nil", ok, err)
		}
	})
}

func TestWriteJournalRefusesBeforeAnyCall(t *testing.T) {
	t.Parallel()
	ok := journal.Journal{ID: "rot-20261129T031500Z-1a2b3c", Mode: journal.ModeMaintenance, Phase: journal.PhaseStarted}
	cases := []struct {
		name string
		edit func(*journal.Journal)
	}{
		{"no id", func(j *journal.Journal) { j.ID = "" }},
		{"id not tag-safe", func(j *journal.Journal) { j.ID = "rot#1" }},
		{"no mode", func(j *journal.Journal) { j.Mode = "" }},
		{"unknown mode", func(j *journal.Journal) { j.Mode = "yolo" }},
		{"unknown phase", func(j *journal.Journal) { j.Phase = "exploded" }},
		{"fingerprint not tag-safe", func(j *journal.Journal) { j.NewFingerprint = "sha256:(x)" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := ok
			tc.edit(&j)
			api := &countingAPI{}
			if err := (rotate.Backup{API: api, Name: "never-touched"}).WriteJournal(t.Context(), j); err == nil {
				t.Fatal("WriteJournal accepted an invalid journal")
			}
			if api.calls.Load() != 0 {
				t.Errorf("WriteJournal made %d calls before refusing", api.calls.Load())
			}
		})
	}
}

func TestReadJournalRejectsUnknownValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		tags     map[string]string
		wantText string
	}{
		{"unknown phase", map[string]string{"valine-check:rotation-id": "rot-1", "valine-check:mode": "maintenance", "valine-check:phase": "exploded"}, `"exploded"`},
		{"unknown mode", map[string]string{"valine-check:rotation-id": "rot-1", "valine-check:mode": "yolo", "valine-check:phase": "started"}, `"yolo"`},
		{"no id", map[string]string{"valine-check:mode": "maintenance", "valine-check:phase": "started"}, "rotation-id"},
		{"bad time", map[string]string{"valine-check:rotation-id": "rot-1", "valine-check:mode": "maintenance", "valine-check:phase": "started", "valine-check:started-at": "yesterday"}, "started-at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, c := storedBackup(t)
			var tags []smtypes.Tag
			for k, v := range tc.tags {
				tags = append(tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
			}
			if _, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{SecretId: aws.String(b.Name), Tags: tags}); err != nil {
				t.Fatalf("TagResource: %v", err)
			}
			_, ok, err := b.ReadJournal(t.Context())
			if !errors.Is(err, journal.ErrBadJournal) || ok || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("ReadJournal = %v, %v; want ErrBadJournal naming %s", ok, err, tc.wantText)
			}
		})
	}
}

func TestParseModeAndPhase(t *testing.T) {
	t.Parallel()
	for _, m := range journal.Modes {
		if got, err := journal.ParseMode(string(m)); got != m || err != nil {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	for _, p := range journal.Phases {
		if got, err := journal.ParsePhase(string(p)); got != p || err != nil {
			t.Errorf("ParsePhase(%q) = %q, %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "Maintenance", "zero_downtime", "fast"} {
		if _, err := journal.ParseMode(bad); err == nil || !strings.Contains(err.Error(), "zero-downtime, maintenance, emergency") {
			t.Errorf("ParseMode(%q) error = %v, want one listing the modes", bad, err)
		}
	}
	for _, bad := range []string{"", "Completed", "done"} {
		if _, err := journal.ParsePhase(bad); err == nil || !strings.Contains(err.Error(), "rolled-back") {
			t.Errorf("ParsePhase(%q) error = %v, want one listing the phases", bad, err)
		}
	}
	terminal := map[journal.Phase]bool{journal.PhaseCompleted: true, journal.PhaseRolledBack: true, journal.PhaseAbandoned: true}
	for _, p := range journal.Phases {
		if p.Terminal() != terminal[p] {
			t.Errorf("%s.Terminal() = %v", p, p.Terminal())
		}
	}
}

func TestNewRotationID(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 4, 15, 0, 0, time.FixedZone("CET", 3600))
	a, b := journal.NewRotationID(now), journal.NewRotationID(now)
	for _, id := range []string{a, b} {
		if !regexp.MustCompile(`^rot-20261129T031500Z-[0-9a-f]{6}$`).MatchString(id) {
			t.Errorf("NewRotationID = %q, want rot-20261129T031500Z-<6 hex>", id)
		}
	}
	if a == b {
		t.Errorf("two ids for the same second are equal: %s", a)
	}
}
