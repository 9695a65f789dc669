// Package deploy holds the scheduled probe's SAM template (template.yaml)
// and, in build/, the program that builds its code. These tests read the
// template as CloudFormation would and hold it to the alarms package and
// to what the function reads.
package deploy

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/valine/valine-check/alarms"
)

// required are values for the parameters without a default.
func required() map[string]string {
	return map[string]string{
		"ApiUrl":                    "https://api.valine.example",
		"Deployment":                "valine-api-prod",
		"ProbeCredentialsSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:valine/probe-AbCdEf",
	}
}

func withParams(extra map[string]string) map[string]string {
	p := required()
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// The template's defaults are the alarms package's.
func TestTemplateDefaultsAreTheAlarmsDefaults(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t, required())
	want := map[string]string{
		"MetricNamespace":  alarms.DefaultProbeNamespace,
		"AlarmPrefix":      alarms.DefaultPrefix,
		"SuccessThreshold": strconv.FormatFloat(alarms.DefaultThresholds().ProbeSuccessPercent, 'f', -1, 64),
		"ScheduleRate":     "rate(5 minutes)",
		"LogRetentionDays": "30",
		"CreateAlarm":      "true",
	}
	for k, v := range want {
		if tp.params[k] != v {
			t.Errorf("parameter %s defaults to %q, want %q", k, tp.params[k], v)
		}
	}
}

// The alarm is alarms.Desired's probe alarm, field for field, for the
// defaults and for every parameter that changes it.
func TestTemplateAlarmIsTheAlarmsPackages(t *testing.T) {
	t.Parallel()
	topic := "arn:aws:sns:eu-west-1:123456789012:valine-oncall"
	cases := map[string]map[string]string{
		"defaults": {},
		"custom":   {"Deployment": "prod.eu_1", "MetricNamespace": "Acme/Probe", "AlarmPrefix": "pv-prod-", "SuccessThreshold": "90", "AlarmTopicArn": topic},
		"fraction": {"SuccessThreshold": "99.5"},
	}
	for name, params := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tp := loadTemplate(t, withParams(params))
			got, ok := tp.resources["ProbeSuccessAlarm"]
			if !ok {
				t.Fatal("no ProbeSuccessAlarm")
			}
			threshold, err := strconv.ParseFloat(tp.params["SuccessThreshold"], 64)
			if err != nil {
				t.Fatal(err)
			}
			th := alarms.DefaultThresholds()
			th.ProbeSuccessPercent = threshold
			as, _, err := alarms.Desired(alarms.Config{
				APIName: "valine-api", Stage: "prod", Functions: []string{"pv-api-prod-auth"}, FailurePattern: "JWT verification failed",
				Deployment: tp.params["Deployment"], ProbeNamespace: tp.params["MetricNamespace"], Prefix: tp.params["AlarmPrefix"],
				SNSTopicARN: tp.params["AlarmTopicArn"], Thresholds: &th,
			})
			if err != nil {
				t.Fatal(err)
			}
			var want *alarms.Alarm
			for i := range as {
				if as[i].MetricName == alarms.ProbeMetric {
					want = &as[i]
				}
			}
			if want == nil {
				t.Fatal("alarms.Desired has no probe alarm")
			}
			p := got["Properties"].(map[string]any)
			fields := []struct {
				name      string
				got, want string
			}{
				{"AlarmName", str(p["AlarmName"]), want.Name},
				{"AlarmDescription", str(p["AlarmDescription"]), want.Description},
				{"Namespace", str(p["Namespace"]), want.Namespace},
				{"MetricName", str(p["MetricName"]), want.MetricName},
				{"Statistic", str(p["Statistic"]), string(want.Statistic)},
				{"Period", str(p["Period"]), strconv.Itoa(int(want.Period))},
				{"EvaluationPeriods", str(p["EvaluationPeriods"]), strconv.Itoa(int(want.Evaluation))},
				{"DatapointsToAlarm", str(p["DatapointsToAlarm"]), strconv.Itoa(int(want.ToAlarm))},
				{"Threshold", str(p["Threshold"]), strconv.FormatFloat(want.Threshold, 'f', -1, 64)},
				{"ComparisonOperator", str(p["ComparisonOperator"]), string(want.Comparison)},
				{"TreatMissingData", str(p["TreatMissingData"]), want.TreatMissingData},
				{"AlarmActions", strings.Join(strs(t, p["AlarmActions"]), ","), strings.Join(want.AlarmActions, ",")},
				{"OKActions", strings.Join(strs(t, p["OKActions"]), ","), strings.Join(want.OKActions, ",")},
			}
			for _, f := range fields {
				if f.got != f.want {
					t.Errorf("%s: template %q, alarms %q", f.name, f.got, f.want)
				}
			}
			var dims []string
			for _, d := range p["Dimensions"].([]any) {
				dm := d.(map[string]any)
				dims = append(dims, str(dm["Name"])+"="+str(dm["Value"]))
			}
			var wantDims []string
			for _, d := range want.Dimensions {
				wantDims = append(wantDims, d.Name+"="+d.Value)
			}
			slices.Sort(dims)
			slices.Sort(wantDims)
			if !slices.Equal(dims, wantDims) {
				t.Errorf("Dimensions: template %v, alarms %v", dims, wantDims)
			}
			// The function publishes under the same namespace and deployment.
			env := get(t, tp.resources["ProbeFunction"], "Properties", "Environment", "Variables").(map[string]any)
			if env["VALINE_PROBE_NAMESPACE"] != want.Namespace || env["VALINE_DEPLOYMENT"] != tp.params["Deployment"] {
				t.Errorf("function publishes to %v / %v", env["VALINE_PROBE_NAMESPACE"], env["VALINE_DEPLOYMENT"])
			}
		})
	}
}

func TestTemplateAlarmCanBeLeftToTheAlarmsCommand(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t, withParams(map[string]string{"CreateAlarm": "false"}))
	if _, ok := tp.resources["ProbeSuccessAlarm"]; ok {
		t.Error("CreateAlarm=false still creates the alarm")
	}
}

func TestTemplateFunction(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t, required())
	if tp.raw["Transform"] != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform %v", tp.raw["Transform"])
	}
	fn := tp.resources["ProbeFunction"]
	if fn["Type"] != "AWS::Serverless::Function" {
		t.Fatalf("ProbeFunction is %v", fn["Type"])
	}
	p := fn["Properties"].(map[string]any)
	for k, want := range map[string]string{
		"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": "dist/valine-probe-arm64.zip",
		"Role": "getatt:ProbeRole.Arn", "FunctionName": "valine-probe-test-valine-probe",
	} {
		if str(p[k]) != want {
			t.Errorf("%s = %v, want %s", k, p[k], want)
		}
	}
	if a := strs(t, p["Architectures"]); !slices.Equal(a, []string{"arm64"}) {
		t.Errorf("Architectures %v", a)
	}
	if _, ok := p["Policies"]; ok {
		t.Error("the function has Policies: SAM would add a role beyond ProbeRole")
	}
	// The schedule.
	ev := get(t, p, "Events", "Schedule").(map[string]any)
	if ev["Type"] != "Schedule" || get(t, ev, "Properties", "Schedule") != "rate(5 minutes)" {
		t.Errorf("schedule %v", ev)
	}
	// The log group: the function's, with the retention asked for.
	lg := tp.resources["ProbeLogGroup"]
	if get(t, lg, "Properties", "RetentionInDays") != "30" || get(t, lg, "Properties", "LogGroupName") != "/aws/lambda/"+str(p["FunctionName"]) {
		t.Errorf("log group %v", lg)
	}
	if get(t, p, "LoggingConfig", "LogGroup") != "ref:ProbeLogGroup" {
		t.Errorf("the function logs to %v", get(t, p, "LoggingConfig", "LogGroup"))
	}
	// A run that failed is not retried (the handler never fails for the API).
	if get(t, p, "EventInvokeConfig", "MaximumRetryAttempts") != "0" {
		t.Error("failed invocations are retried")
	}
	// The timeout leaves room for the checks: convergence 20 s plus an attempt of 10 s.
	if timeout, _ := strconv.Atoi(str(p["Timeout"])); timeout < 40 {
		t.Errorf("timeout %d s is too short for a run", timeout)
	}
}

// Every variable the template sets is one the function reads, and every
// one it must set is set.
func TestTemplateSetsWhatTheFunctionReads(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../cmd/valine-probe/config.go")
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(VALINE_[A-Z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	for name, params := range map[string]map[string]string{
		"minimal": required(),
		"full": withParams(map[string]string{"BackupSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:valine-check/pv-AbCdEf", "ProfileOverridesJson": `{"rejectStatus":403}`,
			"SourceOfTruth": "secretsmanager:valine/prod/jwt-secret", "SourceOfTruthArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:valine/prod/jwt-secret-AbCdEf"}),
	} {
		t.Run(name, func(t *testing.T) {
			tp := loadTemplate(t, params)
			env := get(t, tp.resources["ProbeFunction"], "Properties", "Environment", "Variables").(map[string]any)
			for k := range env {
				if !read[k] {
					t.Errorf("the template sets %s, which cmd/valine-probe does not read", k)
				}
			}
			for _, k := range []string{"VALINE_API_URL", "VALINE_DEPLOYMENT", "VALINE_PROBE_SECRET_ID"} {
				if env[k] == nil || env[k] == "" {
					t.Errorf("%s is not set", k)
				}
			}
			_, hasBackup := env["VALINE_BACKUP_SECRET"]
			if hasBackup != (params["BackupSecretArn"] != "") {
				t.Errorf("VALINE_BACKUP_SECRET set: %v", hasBackup)
			}
		})
	}
}

// The role may read the two secrets and write its own log group, and
// nothing else.
func TestTemplateIAMIsLeastPrivilege(t *testing.T) {
	t.Parallel()
	creds := required()["ProbeCredentialsSecretArn"]
	backup := "arn:aws:secretsmanager:eu-west-1:123456789012:secret:valine-check/pv-api-prod--AbCdEf"
	cases := map[string]struct {
		params map[string]string
		want   []string // "action on resource", sorted
	}{
		"without a backup": {required(), []string{
			"logs:CreateLogStream on getatt:ProbeLogGroup.Arn",
			"logs:PutLogEvents on getatt:ProbeLogGroup.Arn",
			"secretsmanager:GetSecretValue on " + creds,
		}},
		"with a backup": {withParams(map[string]string{"BackupSecretArn": backup}), []string{
			"logs:CreateLogStream on getatt:ProbeLogGroup.Arn",
			"logs:PutLogEvents on getatt:ProbeLogGroup.Arn",
			"secretsmanager:DescribeSecret on " + backup,
			"secretsmanager:GetSecretValue on " + backup,
			"secretsmanager:GetSecretValue on " + creds,
		}},
		"with a source of truth": {withParams(map[string]string{"BackupSecretArn": backup, "SourceOfTruth": "ssm:/valine/prod/jwt-secret",
			"SourceOfTruthArn": "arn:aws:ssm:eu-west-1:123456789012:parameter/valine/prod/jwt-secret"}), []string{
			"logs:CreateLogStream on getatt:ProbeLogGroup.Arn",
			"logs:PutLogEvents on getatt:ProbeLogGroup.Arn",
			"secretsmanager:DescribeSecret on " + backup,
			"secretsmanager:GetSecretValue on " + backup,
			"secretsmanager:GetSecretValue on " + creds,
			"secretsmanager:GetSecretValue on arn:aws:ssm:eu-west-1:123456789012:parameter/valine/prod/jwt-secret",
			"ssm:GetParameter on arn:aws:ssm:eu-west-1:123456789012:parameter/valine/prod/jwt-secret",
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tp := loadTemplate(t, tc.params)
			var grants []string
			for id, r := range tp.resources {
				typ := str(r["Type"])
				switch {
				case typ == "AWS::IAM::Role":
					if id != "ProbeRole" {
						t.Errorf("another role: %s", id)
					}
					p := r["Properties"].(map[string]any)
					if _, ok := p["ManagedPolicyArns"]; ok {
						t.Error("the role has managed policies")
					}
					principal := get(t, p["AssumeRolePolicyDocument"].(map[string]any)["Statement"].([]any)[0], "Principal", "Service")
					if principal != "lambda.amazonaws.com" {
						t.Errorf("the role is for %v", principal)
					}
					for _, pol := range p["Policies"].([]any) {
						for _, st := range get(t, pol, "PolicyDocument", "Statement").([]any) {
							s := st.(map[string]any)
							if s["Effect"] != "Allow" || s["NotAction"] != nil || s["NotResource"] != nil || s["Condition"] != nil {
								t.Errorf("statement %v", s)
							}
							for _, a := range strs(t, s["Action"]) {
								for _, res := range strs(t, s["Resource"]) {
									grants = append(grants, a+" on "+res)
								}
							}
						}
					}
				case strings.HasPrefix(typ, "AWS::IAM::"):
					t.Errorf("%s is a %s", id, typ)
				}
			}
			slices.Sort(grants)
			if !slices.Equal(grants, tc.want) {
				t.Errorf("grants:\n  %s\nwant:\n  %s", strings.Join(grants, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestTemplateRefusesASlowSchedule(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+AllowedPattern: (\^rate.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("ScheduleRate has no AllowedPattern")
	}
	re := regexp.MustCompile(string(m[1]))
	for rate, ok := range map[string]bool{
		"rate(1 minute)": true, "rate(2 minutes)": true, "rate(5 minutes)": true,
		"rate(10 minutes)": false, "rate(6 minutes)": false, "rate(1 minutes)": false, "rate(1 hour)": false, "cron(0/5 * * * ? *)": false,
	} {
		if re.MatchString(rate) != ok {
			t.Errorf("%s allowed: %v, want %v", rate, !ok, ok)
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
