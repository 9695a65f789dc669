package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"

	"github.com/valine/valine-check/probes"
)

func sampleReport() probes.Report {
	conv := 1500 * time.Millisecond
	rep := probes.Report{
		Schema: probes.ReportSchema, API: "http://api", Profile: "runbook", Expect: probes.Strict,
		StartedAt: time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC), Duration: 2 * time.Second,
		Results: []probes.Result{
			{Name: "login", Outcome: probes.Pass, Reason: "ok", Duration: 10 * time.Millisecond, Attempts: 1},
			{Name: "old-token-rejected", Outcome: probes.Fail, Reason: "old token <accepted> & more", Duration: time.Second, Attempts: 4, Details: map[string]any{"status": 200}},
			{Name: "new-secret-in-use", Outcome: probes.Pass, Reason: "ok", Duration: conv, Attempts: 3, ConvergedAfter: &conv},
			{Name: "no-log-errors", Outcome: probes.Warn, Reason: "silent", Attempts: 1},
			{Name: "security-hs384-hs512", Outcome: probes.Skip, Reason: "no secret", Attempts: 1},
			{Name: "refresh", Outcome: probes.Error, Reason: "unreachable", Attempts: 1},
		},
	}
	rep.Summary = probes.Summary{Total: 6, Passed: 2, Failed: 1, Warned: 1, Skipped: 1, Errored: 1}
	return rep
}

func TestJUnitIsValidXMLWithCounts(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var doc reporters.JUnitTestSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not valid XML: %v\n%s", err, buf.String())
	}
	if doc.Tests != 6 || doc.Failures != 1 || doc.Errors != 1 || len(doc.TestSuites) != 1 {
		t.Fatalf("counts: %+v", doc)
	}
	cases := map[string]reporters.JUnitTestCase{}
	for _, tc := range doc.TestSuites[0].TestCases {
		cases[tc.Name] = tc
	}
	if f := cases["old-token-rejected"].Failure; f == nil || f.Message != "old token <accepted> & more" {
		t.Errorf("failure not carried: %+v", f)
	}
	if cases["refresh"].Error == nil || cases["security-hs384-hs512"].Skipped == nil || cases["login"].Failure != nil {
		t.Error("outcomes not mapped to error/skipped/pass")
	}
	if !strings.Contains(cases["no-log-errors"].SystemOut, "WARNING: silent") {
		t.Errorf("warning not visible: %q", cases["no-log-errors"].SystemOut)
	}
}

func TestJSONRoundTripAndSchemaFields(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "status", "api", "profile", "expect", "startedAt", "durationMs", "checksTotalMs", "summary", "results"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("missing field %q", k)
		}
	}
	if raw["status"] != "fail" || raw["schema"] != probes.ReportSchema {
		t.Errorf("status %v schema %v", raw["status"], raw["schema"])
	}
	var back probes.Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	r, ok := back.Result("new-secret-in-use")
	if !ok || r.ConvergedAfter == nil || *r.ConvergedAfter != 1500*time.Millisecond || r.Attempts != 3 {
		t.Errorf("round trip lost facts: %+v", r)
	}
}

func TestTextNamesEveryCheckAndVerdict(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"FAIL", "old-token-rejected", "(4 attempts)", "converged after 1.5s", "FAIL: 2 passed, 1 failed, 1 warned, 1 skipped, 1 errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}
