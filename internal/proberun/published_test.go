package proberun_test

import (
	"slices"
	"testing"

	"github.com/valine/valine-check/internal/proberun"
)

func TestPublishedChecksAreWhatARunReports(t *testing.T) {
	t.Parallel()
	got, err := proberun.PublishedChecks()
	if err != nil {
		t.Fatal(err)
	}
	// A run without a journal reports these; one in a rotation adds its old-token check.
	for name := range withoutJournal {
		if !slices.Contains(got, name) {
			t.Errorf("%s is reported by a scheduled run but not published: %q", name, got)
		}
	}
	for _, name := range []string{"old-token-rejected", "old-token-accepted"} {
		if !slices.Contains(got, name) {
			t.Errorf("%s (a journalled rotation's) missing from %q", name, got)
		}
	}
	if slices.Contains(got, "no-log-errors") || len(got) != len(withoutJournal)+2 {
		t.Errorf("published %q: want exactly the run's %d checks and the two old-token checks", got, len(withoutJournal))
	}
}
