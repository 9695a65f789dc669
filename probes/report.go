package probes

import (
	"encoding/json"
	"time"
)

// ReportSchema names the JSON report's schema (docs/report-schema.md). It
// changes only when a field changes meaning or disappears.
const ReportSchema = "valine-check/report/v1"

// Report is a run's results with what they were run against.
type Report struct {
	Schema    string
	API       string
	Profile   string
	Expect    Expect
	Function  string
	StartedAt time.Time
	// Duration is the run's wall time.
	Duration time.Duration
	Results  []Result
	Summary  Summary
	// Gate is the judgement against a baseline, when the run verified a
	// change (see JudgeAgainst); nil for a plain run, which is a strict gate.
	Gate *Gate
}

// Summary counts results by outcome.
type Summary struct {
	Total   int `json:"total"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Warned  int `json:"warned"`
	Skipped int `json:"skipped"`
	Errored int `json:"errored"`
}

func summarize(results []Result) Summary {
	s := Summary{Total: len(results)}
	for _, r := range results {
		switch r.Outcome {
		case Pass:
			s.Passed++
		case Fail:
			s.Failed++
		case Warn:
			s.Warned++
		case Skip:
			s.Skipped++
		case Error:
			s.Errored++
		}
	}
	return s
}

// Status is the run's verdict: fail if any check failed (a finding about the
// deployment), else error if any could not run (the environment failed),
// else pass. Warnings and skips do not fail a run; the report shows them.
// A report judged against a baseline gives the gate's verdict instead, in
// which a finding the deployment already had does not fail the change.
func (r Report) Status() Outcome {
	if r.Gate != nil {
		return r.Gate.Verdict
	}
	switch {
	case r.Summary.Failed > 0:
		return Fail
	case r.Summary.Errored > 0:
		return Error
	}
	return Pass
}

// ChecksTotal is the sum of the checks' durations: what the run would take
// if they ran one after another.
func (r Report) ChecksTotal() time.Duration {
	var d time.Duration
	for _, res := range r.Results {
		d += res.Duration
	}
	return d
}

// Result returns the named check's result and whether it ran.
func (r Report) Result(name string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

type reportJSON struct {
	Schema        string    `json:"schema"`
	Status        Outcome   `json:"status"`
	API           string    `json:"api"`
	Profile       string    `json:"profile"`
	Expect        Expect    `json:"expect"`
	Function      string    `json:"function,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	DurationMS    float64   `json:"durationMs"`
	ChecksTotalMS float64   `json:"checksTotalMs"`
	Summary       Summary   `json:"summary"`
	Gate          *Gate     `json:"gate,omitempty"`
	Results       []Result  `json:"results"`
}

// MarshalJSON writes the documented form (docs/report-schema.md).
func (r Report) MarshalJSON() ([]byte, error) {
	return json.Marshal(reportJSON{
		Schema: r.Schema, Status: r.Status(), API: r.API, Profile: r.Profile, Expect: r.Expect,
		Function: r.Function, StartedAt: r.StartedAt, DurationMS: ms(r.Duration),
		ChecksTotalMS: ms(r.ChecksTotal()), Summary: r.Summary, Gate: r.Gate, Results: r.Results,
	})
}

// UnmarshalJSON reads the documented form back.
func (r *Report) UnmarshalJSON(b []byte) error {
	var in reportJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = Report{Schema: in.Schema, API: in.API, Profile: in.Profile, Expect: in.Expect, Function: in.Function,
		StartedAt: in.StartedAt, Duration: fromMS(in.DurationMS), Results: in.Results, Summary: in.Summary, Gate: in.Gate}
	return nil
}

// LoginSession returns the session of the run's login, when it passed: a
// rotation keeps its baseline's, to try its refresh token after the change.
func (r Report) LoginSession() (Session, bool) {
	if res, ok := r.Result("login"); ok && res.Outcome == Pass && res.session != nil {
		return *res.session, true
	}
	return Session{}, false
}

// NewReport builds a report from results gathered outside the runner (a
// preflight, say), with the summary filled in.
func NewReport(results []Result, api, profile, function string, start time.Time) Report {
	return Report{Schema: ReportSchema, API: api, Profile: profile, Function: function,
		StartedAt: start.UTC(), Duration: time.Since(start), Results: results, Summary: summarize(results)}
}
