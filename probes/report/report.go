// Package report renders a probes.Report for people (text), programs (JSON,
// see docs/report-schema.md) and CI systems (JUnit XML, in the same shape as
// Ginkgo's --junit-report so one CI parser reads both).
package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"

	"github.com/valine/valine-check/probes"
)

// Format is an output format.
type Format string

// The formats.
const (
	Text  Format = "text"
	JSON  Format = "json"
	JUnit Format = "junit"
)

// ParseFormat accepts text, json or junit.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case Text, JSON, JUnit:
		return Format(s), nil
	}
	return "", fmt.Errorf("output %q: must be text, json or junit", s)
}

// Write renders rep in the format.
func Write(w io.Writer, f Format, rep probes.Report) error {
	switch f {
	case JSON:
		return WriteJSON(w, rep)
	case JUnit:
		return WriteJUnit(w, rep)
	default:
		return WriteText(w, rep)
	}
}

// WriteJSON writes the report as one indented JSON document.
func WriteJSON(w io.Writer, rep probes.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText writes a table a person reads at 3 a.m.: one line per check,
// the verdict first, then a summary line.
func WriteText(w io.Writer, rep probes.Report) error {
	fmt.Fprint(w, "valine-check:")
	if rep.Expect != "" {
		fmt.Fprintf(w, " expect %s,", rep.Expect)
	}
	fmt.Fprintf(w, " profile %s, API %s", rep.Profile, rep.API)
	if rep.Function != "" {
		fmt.Fprintf(w, ", function %s", rep.Function)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rep.Results {
		timing := round(r.Duration).String()
		if r.Attempts > 1 {
			timing += fmt.Sprintf(" (%d attempts)", r.Attempts)
		}
		if r.ConvergedAfter != nil && r.Attempts > 1 {
			timing += fmt.Sprintf(", converged after %s", round(*r.ConvergedAfter))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.ToUpper(string(r.Outcome)), r.Name, timing, reason(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := rep.Summary
	if _, err := fmt.Fprintf(w, "%s: %d passed, %d failed, %d warned, %d skipped, %d errors in %s (checks total %s)\n",
		strings.ToUpper(string(rep.Status())), s.Passed, s.Failed, s.Warned, s.Skipped, s.Errored, round(rep.Duration), round(rep.ChecksTotal())); err != nil {
		return err
	}
	if g := rep.Gate; g != nil {
		_, err := fmt.Fprintf(w, "gate (judged against the baseline before the change): %s\n", g.Summary())
		return err
	}
	return nil
}

// reason is a result's reason, saying first when the failure is a finding
// the deployment already had before the change.
func reason(r probes.Result) string {
	if r.PreExisting {
		return "pre-existing (also before the change, not counted against it): " + r.Reason
	}
	return r.Reason
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

// WriteJUnit writes JUnit XML with one testcase per check: fail becomes
// <failure>, error <error>, skip <skipped>; a warning passes and says so in
// system-out.
func WriteJUnit(w io.Writer, rep probes.Report) error {
	suiteName := "valine-check"
	if rep.Expect != "" {
		suiteName = fmt.Sprintf("valine-check after-rotation (%s)", rep.Expect)
	}
	suite := reporters.JUnitTestSuite{
		Name:      suiteName,
		Package:   "github.com/valine/valine-check/probes",
		Tests:     rep.Summary.Total,
		Skipped:   rep.Summary.Skipped,
		Errors:    rep.Summary.Errored,
		Failures:  rep.Summary.Failed,
		Time:      rep.Duration.Seconds(),
		Timestamp: rep.StartedAt.UTC().Format("2006-01-02T15:04:05"),
		Properties: reporters.JUnitProperties{Properties: []reporters.JUnitProperty{
			{Name: "api", Value: rep.API}, {Name: "profile", Value: rep.Profile},
			{Name: "expect", Value: string(rep.Expect)}, {Name: "function", Value: rep.Function},
			{Name: "status", Value: string(rep.Status())},
		}},
	}
	for _, r := range rep.Results {
		tc := reporters.JUnitTestCase{
			Name:      r.Name,
			Classname: suiteName,
			Status:    string(r.Outcome),
			Time:      r.Duration.Seconds(),
			SystemOut: details(r),
		}
		switch r.Outcome {
		case probes.Fail:
			tc.Failure = &reporters.JUnitFailure{Message: reason(r), Type: "failed", Description: reason(r)}
		case probes.Error:
			tc.Error = &reporters.JUnitError{Message: r.Reason, Type: "error", Description: r.Reason}
		case probes.Skip:
			tc.Skipped = &reporters.JUnitSkipped{Message: "skipped - " + r.Reason}
		case probes.Warn:
			tc.SystemOut = "WARNING: " + r.Reason + "\n" + tc.SystemOut
		}
		suite.TestCases = append(suite.TestCases, tc)
	}
	doc := reporters.JUnitTestSuites{
		Tests: suite.Tests, Disabled: suite.Skipped, Errors: suite.Errors, Failures: suite.Failures,
		Time: suite.Time, TestSuites: []reporters.JUnitTestSuite{suite},
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encoding JUnit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// details renders a result's reason and facts as "key: value" lines.
func details(r probes.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", r.Reason)
	keys := make([]string, 0, len(r.Details))
	for k := range r.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %v\n", k, r.Details[k])
	}
	if r.Attempts > 1 {
		fmt.Fprintf(&b, "attempts: %d\n", r.Attempts)
	}
	return b.String()
}
