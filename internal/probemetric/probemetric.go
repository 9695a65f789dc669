// Package probemetric names the scheduled probe's CloudWatch metrics, the
// one place both their publisher (probes/report's Embedded Metric Format
// lines) and their watcher (the alarms package's SuccessPercent alarm and
// dashboard) take them from, so the two cannot drift apart. It imports
// nothing of the project.
package probemetric

// DefaultNamespace is the probe metrics' namespace when none is given.
const DefaultNamespace = "Valine/Probe"

// The metrics, per check and for the run (Check=All), in the namespace,
// with the dimensions Deployment and Check.
const (
	// SuccessPercent is 100 for a check that succeeded and 0 for one that
	// did not; for Check=all the share of counted checks that succeeded.
	SuccessPercent = "SuccessPercent"
	// Duration is the check's wall time (all attempts), or the run's for
	// Check=all, in milliseconds.
	Duration = "Duration"
)

// The dimensions, and the Check value of the run's overall line.
const (
	DimensionDeployment = "Deployment"
	DimensionCheck      = "Check"
	CheckAll            = "all"
)
