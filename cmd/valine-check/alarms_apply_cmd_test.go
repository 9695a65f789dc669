package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/valine/valine-check/internal/testbed"
)

func TestAlarmsPlanGatesCIAndApplyAsksOrTakesASavedPlan(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	api := "valine-" + strings.TrimSuffix(strings.TrimPrefix(f.w.Functions[0], "pv-cli-"), "-auth")
	prefix := "vg-" + api + "-"
	deployment := []string{"VALINE_API_NAME=" + api, "VALINE_API_STAGE=prod"}
	env := append(append([]string{"VALINE_ALARM_PREFIX=" + prefix}, deployment...), f.env...)
	rate := prefix + "apigw-4xx-rate-" + api + "-prod"
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "first.json"), filepath.Join(dir, "second.json")
	writes := func() int {
		return f.w.AWSFront.Calls("monitoring:PutMetricAlarm") + f.w.AWSFront.Calls("monitoring:PutDashboard") +
			f.w.AWSFront.Calls("logs:PutMetricFilter") + f.w.AWSFront.Calls("monitoring:DeleteAlarms")
	}

	// CI gates on the plan: 4 while changes are pending.
	gate := runCLI(t, env, "", "alarms", "plan", "--detailed-exitcode")
	if gate.code != exitChangesPending || !strings.Contains(gate.stdout, "plan: 19 to create") || !strings.Contains(gate.stderr, "19 changes pending") {
		t.Fatalf("plan --detailed-exitcode with changes: want exit 4:\n%s", gate)
	}
	if plain := runCLI(t, env, "", "alarms", "plan"); plain.code != exitOK {
		t.Errorf("plan without --detailed-exitcode exits %d, want 0:\n%s", plain.code, plain)
	}

	// apply asks; no answer, or anything but yes, changes nothing.
	before := writes()
	for _, answer := range []string{"", "y\n", "no\n"} {
		r := runCLI(t, env, answer, "alarms", "apply")
		if r.code != exitUsage || !strings.Contains(r.stderr, "Apply these 19 changes? Type yes:") || !strings.Contains(r.stderr, "nothing changed") ||
			!strings.Contains(r.stdout, "+ create "+rate) {
			t.Errorf("apply answered %q: want the plan shown, the question and exit 2:\n%s", answer, r)
		}
	}
	if writes() != before {
		t.Fatalf("a refused apply wrote %d times", writes()-before)
	}

	// A saved plan holds nothing secret and applies without the deployment flags.
	save := runCLI(t, env, "", "alarms", "plan", "--out", p1, "--detailed-exitcode")
	if save.code != exitChangesPending || !strings.Contains(save.stdout, "alarms apply "+p1) {
		t.Fatalf("plan --out: %s", save)
	}
	raw, err := os.ReadFile(p1)
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, "saved plan", string(raw), f.w.InitialSecret())
	for _, s := range []string{f.w.ProbePassword, "db-pass-"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("the saved plan holds %q", s)
		}
	}
	var file struct {
		Schema, Region, State string
		Changes               []struct{ Kind, Resource, Name string }
	}
	if err := json.Unmarshal(raw, &file); err != nil || file.Schema != "valine-check/alarms-saved-plan/v1" || file.Region != f.w.Region ||
		!strings.HasPrefix(file.State, "sha256:") || len(file.Changes) != 19 {
		t.Fatalf("saved plan: %v, %+v", err, file)
	}
	noFlags := append([]string{}, f.env...) // no API, stage or prefix: the file says it all
	applied := runCLI(t, noFlags, "", "alarms", "apply", p1)
	if applied.code != exitOK || !strings.Contains(applied.stdout, "apply: 19 created, 0 updated, 0 deleted") {
		t.Fatalf("apply FILE:\n%s", applied)
	}
	if r := runCLI(t, env, "", "alarms", "plan", "--detailed-exitcode"); r.code != exitOK || !strings.HasPrefix(r.stdout, "no changes: 19 ") {
		t.Errorf("plan --detailed-exitcode after apply: want exit 0:\n%s", r)
	}

	// A plan whose world moved is refused and changes nothing: the first
	// (everything it creates exists now), and one made before a hand edit.
	before = writes()
	if r := runCLI(t, noFlags, "", "alarms", "apply", "--plan", p1); r.code != exitUsage || !strings.Contains(r.stderr, "stale") ||
		!strings.Contains(r.stderr, "alarm "+rate+" appeared") || !strings.Contains(r.stderr, "nothing changed") {
		t.Errorf("applying a plan twice:\n%s", r)
	}
	if r := runCLI(t, env, "", "alarms", "plan", "--out", p2); r.code != exitOK {
		t.Fatalf("plan --out with no changes: %s", r)
	}
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
	before = writes()
	if r := runCLI(t, noFlags, "", "alarms", "apply", p2); r.code != exitUsage || !strings.Contains(r.stderr, "alarm "+rate+" changed") {
		t.Errorf("a plan made before a hand edit:\n%s", r)
	}
	if writes() != before {
		t.Errorf("a stale plan wrote %d times", writes()-before)
	}
	elsewhere := append(append([]string{}, noFlags...), "AWS_REGION=eu-west-3")
	if r := runCLI(t, elsewhere, "", "alarms", "apply", p2); r.code != exitUsage || !strings.Contains(r.stderr, "made in region "+f.w.Region) {
		t.Errorf("a plan applied in another region:\n%s", r)
	}

	// Answered yes, apply puts the hand edit right.
	fix := runCLI(t, env, "yes\n", "alarms", "apply")
	if fix.code != exitOK || !strings.Contains(fix.stderr, "Apply these 1 changes? Type yes:") || !strings.Contains(fix.stdout, "apply: 0 created, 1 updated, 0 deleted") {
		t.Errorf("apply answered yes:\n%s", fix)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no such file", []string{"alarms", "apply", filepath.Join(dir, "missing.json")}, "missing.json"},
		{"not a plan", []string{"alarms", "apply", "--plan", "/dev/null"}, "not a saved alarms plan"},
		{"two files", []string{"alarms", "apply", "--plan", p1, p2}, "two plan files"},
		{"another prefix", []string{"alarms", "apply", "--alarm-prefix", "other-", p2}, "not --alarm-prefix other-"},
		{"empty --out", []string{"alarms", "plan", "--out", ""}, "--out must name a file"},
	} {
		if r := runCLI(t, env, "", tc.args...); r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: want exit 2 mentioning %q:\n%s", tc.name, tc.want, r)
		}
	}
}
