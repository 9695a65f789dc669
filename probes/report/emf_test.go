package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/emfspec"
	"github.com/valine/valine-check/probes"
)

// TestValidatorRejectsBadDocuments proves the validator can fail: each
// document breaks one rule of the specification.
func TestValidatorRejectsBadDocuments(t *testing.T) {
	t.Parallel()
	good := `{"_aws":{"Timestamp":1764385200000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"M","Unit":"Percent"}]}]},"D":"d","M":1}`
	if err := emfspec.Validate([]byte(good)); err != nil {
		t.Fatalf("good document refused: %v", err)
	}
	many := func(n int, f func(i int) string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return strings.Join(s, ",")
	}
	cases := map[string]string{
		"not JSON":            `_aws`,
		"trailing data":       good + ` x`,
		"no _aws":             `{"D":"d","M":1}`,
		"no Timestamp":        `{"_aws":{"CloudWatchMetrics":[]}}`,
		"Timestamp seconds":   `{"_aws":{"Timestamp":1764385200,"CloudWatchMetrics":[]}}`,
		"Timestamp fraction":  `{"_aws":{"Timestamp":1764385200000.5,"CloudWatchMetrics":[]}}`,
		"Timestamp string":    `{"_aws":{"Timestamp":"1764385200000","CloudWatchMetrics":[]}}`,
		"no namespace":        `{"_aws":{"Timestamp":1764385200000,"CloudWatchMetrics":[{"Dimensions":[],"Metrics":[]}]}}`,
		"dimension not root":  strings.Replace(good, `"D":"d",`, ``, 1),
		"dimension number":    strings.Replace(good, `"D":"d"`, `"D":3`, 1),
		"metric not root":     strings.Replace(good, `,"M":1`, ``, 1),
		"metric string":       strings.Replace(good, `"M":1`, `"M":"1"`, 1),
		"bad unit":            strings.Replace(good, `"Percent"`, `"percent"`, 1),
		"31 dimensions":       `{"_aws":{"Timestamp":1764385200000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[` + many(31, func(i int) string { return fmt.Sprintf(`"D%d"`, i) }) + `]],"Metrics":[]}]},` + many(31, func(i int) string { return fmt.Sprintf(`"D%d":"x"`, i) }) + `}`,
		"101 metrics":         `{"_aws":{"Timestamp":1764385200000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],"Metrics":[` + many(101, func(i int) string { return fmt.Sprintf(`{"Name":"M%d"}`, i) }) + `]}]},` + many(101, func(i int) string { return fmt.Sprintf(`"M%d":1`, i) }) + `}`,
		"dimension set value": strings.Replace(good, `[["D"]]`, `["D"]`, 1),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := emfspec.Validate([]byte(doc)); err == nil {
				t.Errorf("accepted: %s", doc)
			}
		})
	}
}

// parseEMF validates every line of out and returns the documents by Check.
func parseEMF(t *testing.T, out string) map[string]map[string]any {
	t.Helper()
	docs := map[string]map[string]any{}
	for line := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		if err := emfspec.Validate([]byte(line)); err != nil {
			t.Fatalf("invalid EMF %v:\n%s", err, line)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatal(err)
		}
		check, _ := doc["Check"].(string)
		if _, dup := docs[check]; dup {
			t.Fatalf("two lines for check %q", check)
		}
		docs[check] = doc
	}
	return docs
}

func result(name string, o probes.Outcome, d time.Duration) probes.Result {
	return probes.Result{Name: name, Outcome: o, Reason: "r", Duration: d, Attempts: 1}
}

func runReport(results ...probes.Result) probes.Report {
	return probes.NewReport(results, "http://api", "runbook", "", time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC))
}

func TestEMFLinesFollowTheSpecification(t *testing.T) {
	t.Parallel()
	rep := runReport(
		result("login", probes.Pass, 12500*time.Microsecond),
		result("new-token-valid", probes.Pass, 3*time.Millisecond),
		result("refresh", probes.Fail, 7*time.Millisecond),
		result("security-alg-none", probes.Warn, time.Millisecond),
	)
	rep.Duration = 30 * time.Millisecond
	var buf bytes.Buffer
	if _, err := WriteEMF(&buf, rep, EMFOptions{Deployment: "valine-api-prod"}); err != nil {
		t.Fatal(err)
	}
	docs := parseEMF(t, buf.String())
	if len(docs) != 5 {
		t.Fatalf("want 4 check lines and 1 overall, got %d:\n%s", len(docs), buf.String())
	}
	for check, doc := range docs {
		meta := doc["_aws"].(map[string]any)
		if ts := meta["Timestamp"].(float64); int64(ts) != rep.StartedAt.UnixMilli() {
			t.Errorf("%s: Timestamp %v, want the run's start %d", check, ts, rep.StartedAt.UnixMilli())
		}
		dir := meta["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if dir["Namespace"] != alarms.DefaultProbeNamespace || doc["Deployment"] != "valine-api-prod" {
			t.Errorf("%s: namespace %v, deployment %v", check, dir["Namespace"], doc["Deployment"])
		}
		dims, _ := json.Marshal(dir["Dimensions"])
		if string(dims) != `[["Deployment","Check"]]` {
			t.Errorf("%s: dimensions %s", check, dims)
		}
		metrics, _ := json.Marshal(dir["Metrics"])
		if string(metrics) != `[{"Name":"SuccessPercent","Unit":"Percent"},{"Name":"Duration","Unit":"Milliseconds"}]` {
			t.Errorf("%s: metrics %s", check, metrics)
		}
	}
	want := map[string][2]float64{ // SuccessPercent, Duration
		"login": {100, 12.5}, "new-token-valid": {100, 3}, "refresh": {0, 7}, "security-alg-none": {100, 1}, "all": {75, 30},
	}
	for check, w := range want {
		d := docs[check]
		if d["SuccessPercent"] != w[0] || d["Duration"] != w[1] {
			t.Errorf("%s: SuccessPercent %v Duration %v, want %v %v", check, d["SuccessPercent"], d["Duration"], w[0], w[1])
		}
	}
	if docs["all"]["Outcome"] != "fail" || docs["refresh"]["Outcome"] != "fail" || docs["security-alg-none"]["Outcome"] != "warn" {
		t.Errorf("outcome properties: all %v refresh %v", docs["all"]["Outcome"], docs["refresh"]["Outcome"])
	}
}

func TestSuccessesCountDependencySkipsAsNoSuccess(t *testing.T) {
	t.Parallel()
	skip := func(name string) probes.Result { return result(name, probes.Skip, 0) }
	// blocked is a check the runner skipped because need did not pass.
	blocked := func(name, need string) probes.Result {
		r := skip(name)
		r.BlockedBy = need
		return r
	}
	cases := []struct {
		name     string
		results  []probes.Result
		perCheck map[string]float64
		percent  float64
	}{
		{"login failed: dependents count as no success",
			[]probes.Result{result("login", probes.Fail, 0), blocked("new-token-valid", "login"), blocked("new-secret-in-use", "login"), blocked("refresh", "login"), blocked("security-hs384-hs512", "login")},
			map[string]float64{"login": 0, "new-token-valid": 0, "new-secret-in-use": 0, "refresh": 0, "security-hs384-hs512": 0}, 0},
		{"login errored (API down)",
			[]probes.Result{result("login", probes.Error, 0), blocked("refresh", "login")},
			map[string]float64{"login": 0, "refresh": 0}, 0},
		{"skipped by design: not counted, nor what needs it",
			[]probes.Result{result("login", probes.Pass, 0), skip("new-secret-in-use"), blocked("security-hs384-hs512", "new-secret-in-use"), blocked("security-expired", "new-secret-in-use"), result("refresh", probes.Pass, 0)},
			map[string]float64{"login": 100, "refresh": 100}, 100},
		{"a skip of its own while its need passed is not counted",
			[]probes.Result{result("login", probes.Pass, 0), skip("security-refresh-as-access")},
			map[string]float64{"login": 100}, 100},
		{"new-secret-in-use failed: the attacks that need it count as no success",
			[]probes.Result{result("login", probes.Pass, 0), result("new-secret-in-use", probes.Fail, 0), blocked("security-hs384-hs512", "new-secret-in-use"), result("refresh", probes.Pass, 0)},
			map[string]float64{"login": 100, "new-secret-in-use": 0, "security-hs384-hs512": 0, "refresh": 100}, 50},
		{"nothing counted is 0",
			[]probes.Result{skip("new-secret-in-use")},
			map[string]float64{}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Successes(runReport(tc.results...))
			if fmt.Sprint(s.PerCheck) != fmt.Sprint(tc.perCheck) || s.Percent != tc.percent {
				t.Errorf("got %v %v%%, want %v %v%%", s.PerCheck, s.Percent, tc.perCheck, tc.percent)
			}
			var buf bytes.Buffer
			if _, err := WriteEMF(&buf, runReport(tc.results...), EMFOptions{Deployment: "d", Namespace: "Acme/Probe"}); err != nil {
				t.Fatal(err)
			}
			docs := parseEMF(t, buf.String())
			if len(docs) != len(tc.perCheck)+1 || docs["all"]["SuccessPercent"] != tc.percent {
				t.Errorf("EMF lines for %v: %s", tc.perCheck, buf.String())
			}
		})
	}
}

func TestEMFRefusesBadOptions(t *testing.T) {
	t.Parallel()
	rep := runReport(result("login", probes.Pass, 0))
	for name, opt := range map[string]EMFOptions{
		"no deployment":     {},
		"blank deployment":  {Deployment: "  "},
		"AWS namespace":     {Deployment: "d", Namespace: "AWS/Lambda"},
		"long namespace":    {Deployment: "d", Namespace: strings.Repeat("n", 256)},
		"long deployment":   {Deployment: strings.Repeat("d", 1025)},
		"AWS namespace too": {Deployment: "d", Namespace: "AWS/Probe"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := EMF(rep, opt); !errors.Is(err, ErrEMF) {
				t.Errorf("want ErrEMF, got %v", err)
			}
		})
	}
}

// The probe's metric is the one the alarms package's SuccessPercent alarm watches.
func TestEMFMatchesTheProbeAlarm(t *testing.T) {
	t.Parallel()
	as, _, err := alarms.Desired(alarms.Config{APIName: "valine-api", Stage: "prod", Functions: []string{"f"}, FailurePattern: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var probe *alarms.Alarm
	for i := range as {
		if as[i].MetricName == alarms.ProbeMetric {
			probe = &as[i]
		}
	}
	if probe == nil {
		t.Fatal("alarms has no probe alarm")
	}
	lines, err := EMF(runReport(result("login", probes.Pass, 0)), EMFOptions{Deployment: "valine-api-prod"})
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]any
	if err := json.Unmarshal(lines[len(lines)-1], &all); err != nil {
		t.Fatal(err)
	}
	dir := all["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if dir["Namespace"] != probe.Namespace {
		t.Errorf("namespace %v, alarm watches %s", dir["Namespace"], probe.Namespace)
	}
	if _, ok := all[probe.MetricName].(float64); !ok {
		t.Errorf("no %s metric", probe.MetricName)
	}
	for _, d := range probe.Dimensions {
		if all[d.Name] != d.Value {
			t.Errorf("dimension %s = %v, alarm wants %s", d.Name, all[d.Name], d.Value)
		}
	}
}
