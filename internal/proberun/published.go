package proberun

import (
	"fmt"
	"slices"

	"github.com/valine/valine-check/probes"
)

// PublishedChecks names every check a scheduled run may publish metrics
// for (its Check dimension), in report order: Checks with what they need,
// and the old-token check a journalled rotation adds (old-token-rejected
// at rest, old-token-accepted in a grace period). The alarms dashboard
// graphs each.
func PublishedChecks() ([]string, error) {
	checks, err := probes.Select(probes.Catalog(), append(slices.Clone(Checks), checkOldTokenRejected, checkOldTokenAccepted))
	if err != nil {
		return nil, fmt.Errorf("the scheduled run's checks: %w", err)
	}
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.Name
	}
	return names, nil
}
