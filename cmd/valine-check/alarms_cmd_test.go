package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/valine/valine-check/internal/testbed"
)

// alarmsPlanJSON is the part of `alarms plan --output json` the tests read.
type alarmsPlanJSON struct {
	Schema  string `json:"schema"`
	Prefix  string `json:"prefix"`
	Changes []struct {
		Kind     string   `json:"kind"`
		Resource string   `json:"resource"`
		Name     string   `json:"name"`
		Fields   []string `json:"fields"`
	} `json:"changes"`
	Summary map[string]int `json:"summary"`
}

func TestAlarmsPlanApplyStatus(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	api := "valine-" + strings.TrimSuffix(strings.TrimPrefix(f.w.Functions[0], "pv-cli-"), "-auth")
	prefix := "vc-" + api + "-"
	env := append([]string{"VALINE_API_NAME=" + api, "VALINE_API_STAGE=prod", "VALINE_ALARM_PREFIX=" + prefix}, f.env...)
	rate := prefix + "apigw-4xx-rate-" + api + "-prod"
	leaks := func(r cliRun) {
		t.Helper()
		assertNoLeak(t, "alarms", r.stdout+r.stderr, f.w.InitialSecret())
	}

	plan := runCLI(t, env, "", "alarms", "plan")
	leaks(plan)
	if plan.code != exitOK || !strings.Contains(plan.stdout, "+ create "+rate+"\n") ||
		!strings.Contains(plan.stdout, "+ create filter "+prefix+"jwt-verification-failures on /aws/lambda/"+f.w.Functions[2]) ||
		!strings.Contains(plan.stdout, "+ create filter "+prefix+"jwt-secondary-secret-use on /aws/lambda/"+f.w.Functions[2]) ||
		!strings.Contains(plan.stdout, "+ create dashboard "+prefix+"dashboard (") ||
		!strings.Contains(plan.stdout, "plan: 19 to create, 0 to update, 0 to delete") {
		t.Fatalf("alarms plan on nothing:\n%s", plan)
	}
	apply := runCLI(t, env, "", "alarms", "apply", "--yes")
	leaks(apply)
	if apply.code != exitOK || !strings.Contains(apply.stdout, "apply: 19 created, 0 updated, 0 deleted") {
		t.Fatalf("alarms apply:\n%s", apply)
	}
	again := runCLI(t, env, "", "alarms", "plan")
	if again.code != exitOK || !strings.HasPrefix(again.stdout, "no changes: 19 ") {
		t.Fatalf("alarms plan after apply:\n%s", again)
	}
	puts, dashPuts := f.w.AWSFront.Calls("monitoring:PutMetricAlarm"), f.w.AWSFront.Calls("monitoring:PutDashboard")
	if second := runCLI(t, env, "", "alarms", "apply"); second.code != exitOK || !strings.HasPrefix(second.stdout, "no changes") ||
		f.w.AWSFront.Calls("monitoring:PutMetricAlarm") != puts || f.w.AWSFront.Calls("monitoring:PutDashboard") != dashPuts {
		t.Fatalf("second alarms apply wrote again:\n%s", second)
	}

	// Someone raises the 4XX threshold by hand, back to the runbook's count.
	cw := cloudwatch.NewFromConfig(f.w.AWS)
	out, err := cw.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{rate}})
	if err != nil || len(out.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	a := out.MetricAlarms[0]
	if _, err := cw.PutMetricAlarm(t.Context(), &cloudwatch.PutMetricAlarmInput{
		AlarmName: a.AlarmName, AlarmDescription: a.AlarmDescription, Namespace: a.Namespace, MetricName: a.MetricName,
		Dimensions: a.Dimensions, Statistic: a.Statistic, Period: a.Period, EvaluationPeriods: a.EvaluationPeriods,
		DatapointsToAlarm: a.DatapointsToAlarm, Threshold: aws.Float64(50), ComparisonOperator: a.ComparisonOperator,
		TreatMissingData: a.TreatMissingData,
	}); err != nil {
		t.Fatal(err)
	}
	drift := runCLI(t, env, "", "alarms", "plan")
	if drift.code != exitOK || !strings.Contains(drift.stdout, "~ update "+rate+" (Threshold)\n") || !strings.Contains(drift.stdout, "plan: 0 to create, 1 to update, 0 to delete") {
		t.Fatalf("alarms plan after a hand edit:\n%s", drift)
	}
	js := runCLI(t, env, "", "alarms", "plan", "--output", "json")
	var p alarmsPlanJSON
	if js.code != exitOK || json.Unmarshal([]byte(js.stdout), &p) != nil {
		t.Fatalf("alarms plan --output json:\n%s", js)
	}
	var updated []string
	for _, c := range p.Changes {
		if c.Kind == "update" {
			updated = append(updated, c.Name+" "+strings.Join(c.Fields, ","))
		}
	}
	if p.Schema != "valine-check/alarms-plan/v1" || p.Prefix != prefix || p.Summary["update"] != 1 || p.Summary["unchanged"] != 18 ||
		len(updated) != 1 || updated[0] != rate+" Threshold" {
		t.Errorf("plan JSON: schema %q, prefix %q, summary %v, updates %q", p.Schema, p.Prefix, p.Summary, updated)
	}
	fix := runCLI(t, env, "", "alarms", "apply", "--output", "json", "--yes")
	var applied struct {
		Applied []struct{ Kind, Name string } `json:"applied"`
	}
	if fix.code != exitOK || json.Unmarshal([]byte(fix.stdout), &applied) != nil || len(applied.Applied) != 1 || applied.Applied[0].Name != rate {
		t.Fatalf("alarms apply --output json:\n%s", fix)
	}

	// Three requests in four refused: the 4XX rate alarm fires.
	dims := []cwtypes.Dimension{{Name: aws.String("ApiName"), Value: aws.String(api)}, {Name: aws.String("Stage"), Value: aws.String("prod")}}
	for _, v := range []float64{1, 1, 1, 0} {
		if _, err := cw.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/ApiGateway"),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("4XXError"), Dimensions: dims, Value: aws.Float64(v)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.w.EvaluateAlarms(t.Context(), prefix); err != nil {
		t.Fatal(err)
	}
	st := runCLI(t, env, "", "alarms", "status")
	if st.code != exitFailed || !hasRow(st.stdout, rate, "ALARM") || !hasRow(st.stdout, prefix+"apigw-5xx-rate-"+api+"-prod", "OK") ||
		!strings.Contains(st.stderr, "in ALARM") {
		t.Fatalf("alarms status:\n%s", st)
	}
	stj := runCLI(t, env, "", "alarms", "status", "-o", "json")
	var status struct {
		Alarms []struct {
			Name, State string
		} `json:"alarms"`
		InAlarm []string `json:"inAlarm"`
	}
	if stj.code != exitFailed || json.Unmarshal([]byte(stj.stdout), &status) != nil || len(status.Alarms) != 18-6 ||
		!strings.Contains(strings.Join(status.InAlarm, " "), rate) {
		t.Fatalf("alarms status --output json:\n%s", stj)
	}
}

func TestAlarmsBadInput(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	env := append([]string{"VALINE_ALARM_PREFIX=vc-bad-"}, f.env...)
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"no API", "the API is missing", []string{"alarms", "plan", "--stage", "prod"}},
		{"no stage", "stage is missing", []string{"alarms", "plan", "--api-name", "x"}},
		{"name and id", "not both", []string{"alarms", "apply", "--api-name", "x", "--api-id", "y", "--stage", "prod"}},
		{"bad output", "--output", []string{"alarms", "plan", "--api-name", "x", "--stage", "prod", "--output", "yaml"}},
		{"rate as a percentage", "fraction", []string{"alarms", "plan", "--api-name", "x", "--stage", "prod", "--max-4xx-rate", "5"}},
		{"empty prefix", "must not be empty", []string{"alarms", "status", "--alarm-prefix", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, env, "", tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit 2 mentioning %q:\n%s", tc.want, r)
			}
		})
	}
	if r := runCLI(t, env, "", "alarms", "status"); r.code != exitOK || !strings.Contains(r.stdout, "no alarms under vc-bad-") {
		t.Errorf("status with nothing applied:\n%s", r)
	}
}

// hasRow reports whether a table row starts with name and then state.
func hasRow(table, name, state string) bool {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name && f[1] == state {
			return true
		}
	}
	return false
}
