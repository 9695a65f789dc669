package main

import (
	"errors"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// The schema ids of the JSON documents the commands print with --output
// json (docs/json-output.md; the check report's is probes.ReportSchema,
// status's rotate.StatusSchema, the alarms' are in alarms_cmd.go). An id
// changes only when a field changes meaning or disappears.
const (
	schemaRotation     = "valine-check/rotation/v1" // rotate, finalize, rollback
	schemaTokenInspect = "valine-check/token-inspect/v1"
	schemaTokenWhich   = "valine-check/token-which/v1"
	schemaTokenForge   = "valine-check/token-forge/v1"
	schemaInsightsList = "valine-check/insights-list/v1"
	schemaInsightsRun  = "valine-check/insights-run/v1"
	schemaSandbox      = "valine-check/sandbox/v1"
	schemaVersion      = "valine-check/version/v1"
)

// rotationJSON is what rotate, finalize and rollback print with --output
// json: the operation's outcome, and the exit code it maps to.
type rotationJSON struct {
	Schema  string `json:"schema"`
	Command string `json:"command"`
	DryRun  bool   `json:"dryRun"`
	// Plan is a dry run's: what would have been done.
	Plan     []string       `json:"plan,omitempty"`
	Rotation *rotationState `json:"rotation,omitempty"`
	// Baseline, Reports are check reports (valine-check/report/v1).
	Baseline   *probes.Report  `json:"baseline,omitempty"`
	Reports    []probes.Report `json:"reports"`
	Comparison *alarms.Verdict `json:"comparison,omitempty"`
	Splits     []rotate.Split  `json:"splits"`
	Audit      string          `json:"audit,omitempty"`
	Error      string          `json:"error,omitempty"`
	ExitCode   int             `json:"exitCode"`
}

// rotationState is the journalled rotation, by fingerprint.
type rotationState struct {
	ID            string        `json:"id"`
	Mode          journal.Mode  `json:"mode"`
	Phase         journal.Phase `json:"phase"`
	Old           string        `json:"old,omitempty"`
	New           string        `json:"new,omitempty"`
	StartedAt     time.Time     `json:"startedAt"`
	UpdatedAt     time.Time     `json:"updatedAt"`
	GraceDeadline *time.Time    `json:"graceDeadline,omitempty"`
	Verification  string        `json:"verification,omitempty"`
	Reason        string        `json:"reason,omitempty"`
	// Source is the journalled source of truth ("lambda-env", "ssm:/…",
	// "secretsmanager:…") and Delivery how the fleet gets it.
	Source   string           `json:"source"`
	Delivery journal.Delivery `json:"delivery"`
}

// newRotationJSON is the document of an operation that ended with exit
// (engineExit's: nil or a cli.ExitCoder).
func newRotationJSON(command string, op operation, out rotate.Outcome, exit error) rotationJSON {
	doc := rotationJSON{Schema: schemaRotation, Command: command, DryRun: out.DryRun, Plan: out.Plan,
		Baseline: out.Baseline, Reports: append([]probes.Report{}, out.Reports...), Comparison: out.Comparison,
		Splits: append([]rotate.Split{}, out.Splits...), ExitCode: exitCodeOf(exit)}
	if exit != nil {
		doc.Error = exit.Error()
	}
	if j := out.Journal; j.ID != "" {
		doc.Rotation = &rotationState{ID: j.ID, Mode: j.Mode, Phase: j.Phase, Old: j.OldFingerprint, New: j.NewFingerprint,
			StartedAt: j.StartedAt, UpdatedAt: j.UpdatedAt, Verification: j.Verification, Reason: j.Reason,
			Source: j.Source.String(), Delivery: j.Delivery.OrEnv()}
		if !j.GraceDeadline.IsZero() {
			d := j.GraceDeadline
			doc.Rotation.GraceDeadline = &d
		}
		if !out.DryRun {
			doc.Audit = op.auditPath
		}
	}
	return doc
}

// exitCodeOf is the process exit code err leads to (run maps the same way).
func exitCodeOf(err error) int {
	if err == nil {
		return exitOK
	}
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	return exitUsage
}

// tokenInspectJSON is token inspect's document: the unverified header and
// claims, the token by fingerprint.
type tokenInspectJSON struct {
	Schema string `json:"schema"`
	probes.Inspection
}

// namedFingerprint is a candidate secret of token which, by fingerprint.
type namedFingerprint struct {
	Label       string `json:"label"`
	Fingerprint string `json:"fingerprint"`
}

// tokenWhichJSON is token which's document; SignedBy is null when no
// candidate signed the token (exit 1).
type tokenWhichJSON struct {
	Schema     string             `json:"schema"`
	Token      string             `json:"token"`
	SignedBy   *namedFingerprint  `json:"signedBy"`
	Candidates []namedFingerprint `json:"candidates"`
}

// tokenForgeJSON is token forge's document: what was written where, by
// fingerprint (the token itself is only in the file).
type tokenForgeJSON struct {
	Schema     string `json:"schema"`
	Token      string `json:"token"`
	Algorithm  string `json:"algorithm"`
	SignedWith string `json:"signedWith"`
	Secret     string `json:"secret"`
	Out        string `json:"out"`
}

// insightsListJSON is insights list's document.
type insightsListJSON struct {
	Schema                  string         `json:"schema"`
	ProbeRejectionsExcluded bool           `json:"probeRejectionsExcluded"`
	Queries                 []alarms.Query `json:"queries"`
}

// insightsRunJSON is insights run's document.
type insightsRunJSON struct {
	Schema                  string        `json:"schema"`
	Query                   alarms.Query  `json:"query"`
	ProbeRejectionsExcluded bool          `json:"probeRejectionsExcluded"`
	Total                   float64       `json:"total"`
	Result                  alarms.Result `json:"result"`
}

// sandboxJSON is sandbox's document: the reports of its verifications, in
// order (valine-check/report/v1 each).
type sandboxJSON struct {
	Schema  string          `json:"schema"`
	Reports []probes.Report `json:"reports"`
}
