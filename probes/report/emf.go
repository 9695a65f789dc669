package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/valine/valine-check/internal/probemetric"
	"github.com/valine/valine-check/probes"
)

// The EMF metrics the scheduled probe publishes. Their names, the
// namespace's default and the dimensions are the alarms package's, so the
// probe and the SuccessPercent alarm cannot drift apart.
const (
	// MetricSuccessPercent is 100 for a check that succeeded and 0 for one
	// that did not; for Check="all" the share of counted checks that
	// succeeded (see Successes).
	MetricSuccessPercent = probemetric.SuccessPercent
	// MetricDuration is the check's wall time (all attempts), or the run's
	// for Check="all", in milliseconds.
	MetricDuration = probemetric.Duration
	// CheckAll is the Check dimension of the run's overall line.
	CheckAll = probemetric.CheckAll
)

// EMFOptions say where the probe's metrics go.
type EMFOptions struct {
	// Namespace is the CloudWatch namespace; "" means probemetric.DefaultNamespace.
	Namespace string
	// Deployment is the Deployment dimension; it must match the alarms'
	// (alarms.Config.DeploymentName). Required.
	Deployment string
}

// ErrEMF is wrapped by every error of EMF's inputs.
var ErrEMF = errors.New("cannot write embedded metric format")

// Success says how a run's results count toward SuccessPercent.
//
// A result counts as a success when it passed or warned (a warning does
// not fail a run either) and as no success when it failed or errored. A
// skipped result counts as no success when a check it needs did not
// succeed (login failed, so refresh could not be tried: nothing was
// proven, and a probe whose login is broken must not look healthy); it is
// not counted at all when it skipped by design (an input it needs is not
// configured, such as the current secret outside a journalled rotation),
// or because a check it needs was itself not counted. The overall percent
// is successes / counted × 100, and 0 when nothing was counted.
type Success struct {
	// PerCheck holds 100 or 0 for each counted check by name; a check not
	// counted is absent.
	PerCheck map[string]float64
	// Counted and Succeeded are the overall percent's denominator and numerator.
	Counted, Succeeded int
	// Percent is the overall SuccessPercent.
	Percent float64
}

// Successes scores rep's results (see Success). What each check needs is
// read from probes.Catalog.
func Successes(rep probes.Report) Success {
	byName := map[string]probes.Result{}
	for _, r := range rep.Results {
		byName[r.Name] = r
	}
	// A skip the runner made because a needed check did not succeed
	// (BlockedBy) counts as no success; a skip of its own is not counted.
	verdict := func(name string) int { return verdictOf(byName, name) }
	s := Success{PerCheck: map[string]float64{}}
	for _, r := range rep.Results {
		switch verdict(r.Name) {
		case 1:
			s.PerCheck[r.Name] = 100
			s.Counted++
			s.Succeeded++
		case 0:
			s.PerCheck[r.Name] = 0
			s.Counted++
		}
	}
	if s.Counted > 0 {
		s.Percent = float64(s.Succeeded) / float64(s.Counted) * 100
	}
	return s
}

// emfMetadata is the "_aws" member of an EMF document.
type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string          `json:"Namespace"`
	Dimensions [][]string      `json:"Dimensions"`
	Metrics    []emfDefinition `json:"Metrics"`
}

type emfDefinition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// emfLine is one EMF document: the metadata, the dimensions' and metrics'
// target members, and properties (members no directive names, which
// CloudWatch keeps in the log event only).
type emfLine struct {
	AWS            emfMetadata `json:"_aws"`
	Deployment     string      `json:"Deployment"`
	Check          string      `json:"Check"`
	SuccessPercent float64     `json:"SuccessPercent"`
	Duration       float64     `json:"Duration"`
	Outcome        string      `json:"Outcome"`
	// Counted and Succeeded are on the overall line only.
	Counted   *int `json:"Counted,omitempty"`
	Succeeded *int `json:"Succeeded,omitempty"`
}

// EMF returns rep as CloudWatch Embedded Metric Format documents, one JSON
// object per element, without newlines: one per counted check (see
// Success) and last one with Check="all" for the run. Each carries the
// metrics SuccessPercent (Percent) and Duration (Milliseconds) under the
// dimension set [Deployment, Check], the run's start as Timestamp, and
// the outcome as a property (the run's status on the overall line, with
// Counted and Succeeded). Nothing in them is a secret or a token.
func EMF(rep probes.Report, opt EMFOptions) ([][]byte, error) {
	lines, _, err := emf(rep, opt)
	return lines, err
}

// emf is EMF, also returning the successes it counted.
func emf(rep probes.Report, opt EMFOptions) ([][]byte, Success, error) {
	if opt.Namespace == "" {
		opt.Namespace = probemetric.DefaultNamespace
	}
	if err := opt.Validate(); err != nil {
		return nil, Success{}, err
	}
	meta := emfMetadata{
		Timestamp: rep.StartedAt.UnixMilli(),
		CloudWatchMetrics: []emfDirective{{
			Namespace:  opt.Namespace,
			Dimensions: [][]string{{probemetric.DimensionDeployment, probemetric.DimensionCheck}},
			Metrics: []emfDefinition{
				{Name: MetricSuccessPercent, Unit: "Percent"},
				{Name: MetricDuration, Unit: "Milliseconds"},
			},
		}},
	}
	s := Successes(rep)
	var lines [][]byte
	add := func(l emfLine) error {
		b, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("encoding the EMF line of %s: %w", l.Check, err)
		}
		lines = append(lines, b)
		return nil
	}
	for _, r := range rep.Results {
		pct, counted := s.PerCheck[r.Name]
		if !counted {
			continue
		}
		if err := add(emfLine{AWS: meta, Deployment: opt.Deployment, Check: r.Name, SuccessPercent: pct,
			Duration: millis(r.Duration.Microseconds()), Outcome: string(r.Outcome)}); err != nil {
			return nil, Success{}, err
		}
	}
	err := add(emfLine{AWS: meta, Deployment: opt.Deployment, Check: CheckAll, SuccessPercent: s.Percent,
		Duration: millis(rep.Duration.Microseconds()), Outcome: string(rep.Status()),
		Counted: &s.Counted, Succeeded: &s.Succeeded})
	return lines, s, err
}

// WriteEMF writes EMF's documents to w, one per line, each in a single
// Write: on Lambda every line on stdout is a log event, and CloudWatch
// extracts the metrics of each event that is an EMF document.
func WriteEMF(w io.Writer, rep probes.Report, opt EMFOptions) (Success, error) {
	lines, s, err := emf(rep, opt)
	if err != nil {
		return s, err
	}
	for _, l := range lines {
		if _, err := w.Write(append(l, '\n')); err != nil {
			return s, fmt.Errorf("writing EMF: %w", err)
		}
	}
	return s, nil
}

// Validate reports every problem with the options, after the default
// namespace is applied; each wraps ErrEMF. A Lambda checks them at init.
func (o EMFOptions) Validate() error {
	if o.Namespace == "" {
		o.Namespace = probemetric.DefaultNamespace
	}
	var problems []string
	switch {
	case len(o.Namespace) > 255:
		problems = append(problems, "the namespace is longer than 255 characters")
	case strings.HasPrefix(o.Namespace, "AWS/"):
		problems = append(problems, fmt.Sprintf("namespace %q: AWS/ is reserved for AWS's own metrics", o.Namespace))
	}
	switch {
	case strings.TrimSpace(o.Deployment) == "":
		problems = append(problems, "the Deployment dimension is empty (it must match the alarms' deployment name)")
	case len(o.Deployment) > 1024:
		problems = append(problems, "the Deployment dimension is longer than 1024 characters")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrEMF, strings.Join(problems, "; "))
	}
	return nil
}

// millis turns microseconds into milliseconds with three decimals.
func millis(us int64) float64 { return float64(us) / 1000 }

// verdictOf is a result's verdict, following the runner's skips to the
// check that blocked them: 1 success, 0 no success, -1 not counted.
func verdictOf(byName map[string]probes.Result, name string) int {
	for range len(byName) + 1 { // a chain longer than the report is a cycle
		r, ok := byName[name]
		switch {
		case !ok:
			return -1
		case r.Outcome == probes.Pass, r.Outcome == probes.Warn:
			return 1
		case r.Outcome == probes.Fail, r.Outcome == probes.Error:
			return 0
		case r.Outcome == probes.Skip && r.BlockedBy != "":
			name = r.BlockedBy
			continue
		}
		return -1
	}
	return -1
}
