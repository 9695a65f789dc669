package alarms_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/profile"
)

// restConfig is a valid configuration for a REST API and two functions,
// with the runbook profile's log patterns.
func restConfig() alarms.Config {
	return alarms.Config{
		APIName: "valine-api", Stage: "prod",
		Functions:        []string{"pv-api-prod-auth", "pv-api-prod-profiles"},
		FailurePattern:   "JWT verification failed",
		SecondaryPattern: alarms.SecondaryUsePattern(profile.Presets["runbook"]),
	}
}

func alarmByName(as []alarms.Alarm, name string) (alarms.Alarm, bool) {
	for _, a := range as {
		if a.Name == name {
			return a, true
		}
	}
	return alarms.Alarm{}, false
}

func TestDesiredNamesAreDeterministic(t *testing.T) {
	t.Parallel()
	as, fs, err := alarms.Desired(restConfig())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Name)
	}
	want := []string{
		"valine-check-apigw-4xx-rate-valine-api-prod",
		"valine-check-apigw-5xx-rate-valine-api-prod",
		"valine-check-jwt-failures-pv-api-prod-auth",
		"valine-check-jwt-failures-pv-api-prod-profiles",
		"valine-check-lambda-errors-pv-api-prod-auth",
		"valine-check-lambda-errors-pv-api-prod-profiles",
		"valine-check-lambda-throttles-pv-api-prod-auth",
		"valine-check-lambda-throttles-pv-api-prod-profiles",
		"valine-check-probe-success-valine-api-prod",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("names:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	// Per function, by log group then name: secondary use, then failures.
	if len(fs) != 4 || fs[1].LogGroup != "/aws/lambda/pv-api-prod-auth" || fs[1].Name != "valine-check-jwt-verification-failures" ||
		fs[1].Pattern != "JWT verification failed" || fs[1].MetricName != "JWTVerificationFailures-pv-api-prod-auth" ||
		fs[0].LogGroup != fs[1].LogGroup || fs[0].Name != "valine-check-jwt-secondary-secret-use" || fs[0].MetricName != "JWTSecondarySecretUse-pv-api-prod-auth" ||
		fs[3].LogGroup != "/aws/lambda/pv-api-prod-profiles" {
		t.Errorf("filters: %+v", fs)
	}
	// The same input gives the same output, whatever the order of the functions.
	cfg := restConfig()
	cfg.Functions = []string{cfg.Functions[1], cfg.Functions[0]}
	as2, fs2, err := alarms.Desired(cfg)
	if err != nil || !reflect.DeepEqual(as, as2) || !reflect.DeepEqual(fs, fs2) {
		t.Errorf("Desired depends on the order of the functions (err %v)", err)
	}
}

// A profile with a secondary variable gets, per function, a second metric
// filter beside the failures': on the same log group, under the prefix,
// counting the verifications the secondary secret passed into a metric of
// the same namespace. A profile without one gets none.
func TestDesiredCountsSecondaryUseOnlyForAProfileWithASecondary(t *testing.T) {
	t.Parallel()
	custom := profile.Presets["runbook"]
	custom.LogVerificationPattern = `"auth: token ok"`
	jsonLogs := profile.Presets["runbook"]
	jsonLogs.LogVerificationPattern = `{ $.event = "jwt" }`
	for _, tc := range []struct {
		name    string
		profile profile.Profile
		want    string // the secondary-use pattern, "" for none
	}{
		{"runbook", profile.Presets["runbook"], `"JWT verification" "secret=secondary"`},
		{"a quoted verification phrase", custom, `"auth: token ok" "secret=secondary"`},
		{"a JSON verification pattern falls back to the reference phrase", jsonLogs, `"JWT verification" "secret=secondary"`},
		{"cookie", profile.Presets["cookie"], ""},
		{"valine", profile.Presets["valine"], ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pattern := alarms.SecondaryUsePattern(tc.profile)
			if pattern != tc.want {
				t.Fatalf("SecondaryUsePattern = %q, want %q", pattern, tc.want)
			}
			cfg := restConfig()
			cfg.Prefix, cfg.LogsNamespace = "pv-prod-", "Acme/Auth"
			cfg.FailurePattern, cfg.SecondaryPattern = tc.profile.LogFailurePattern, pattern
			as, fs, err := alarms.Desired(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.LogGroup+" "+f.Name+" "+f.MetricNamespace+" "+f.MetricName+" "+f.Pattern)
				if f.DefaultValue == nil || *f.DefaultValue != 0 || f.MetricValue != "1" || f.Unit != "Count" {
					t.Errorf("filter %s on %s counts %s with default %v, want 1 a line, default 0", f.Name, f.LogGroup, f.MetricValue, f.DefaultValue)
				}
			}
			var want []string
			for _, fn := range cfg.Functions {
				if pattern != "" {
					want = append(want, "/aws/lambda/"+fn+" pv-prod-jwt-secondary-secret-use Acme/Auth "+alarms.JWTSecondaryUseMetric+"-"+fn+" "+pattern)
				}
				want = append(want, "/aws/lambda/"+fn+" pv-prod-jwt-verification-failures Acme/Auth "+alarms.JWTFailuresMetric+"-"+fn+" "+tc.profile.LogFailurePattern)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("filters:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if len(as) != 9 {
				t.Errorf("%d alarms, want 9: secondary use is graphed, not alarmed", len(as))
			}
		})
	}
}

func TestDesiredAlarmShapes(t *testing.T) {
	t.Parallel()
	cfg := restConfig()
	cfg.SNSTopicARN = "arn:aws:sns:eu-west-1:123456789012:valine-oncall"
	as, fs, err := alarms.Desired(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gt, lt := cwtypes.ComparisonOperatorGreaterThanThreshold, cwtypes.ComparisonOperatorLessThanThreshold
	for _, tc := range []struct {
		name              string
		namespace, metric string
		dims              []alarms.Dimension
		stat              cwtypes.Statistic
		threshold         float64
		op                cwtypes.ComparisonOperator
		evals, toAlarm    int32
		missing           string
	}{
		{"valine-check-apigw-4xx-rate-valine-api-prod", "AWS/ApiGateway", "4XXError",
			[]alarms.Dimension{{Name: "ApiName", Value: "valine-api"}, {Name: "Stage", Value: "prod"}},
			cwtypes.StatisticAverage, 0.05, gt, 1, 1, alarms.MissingNotBreaching},
		{"valine-check-apigw-5xx-rate-valine-api-prod", "AWS/ApiGateway", "5XXError",
			[]alarms.Dimension{{Name: "ApiName", Value: "valine-api"}, {Name: "Stage", Value: "prod"}},
			cwtypes.StatisticAverage, 0.01, gt, 1, 1, alarms.MissingNotBreaching},
		{"valine-check-lambda-errors-pv-api-prod-auth", "AWS/Lambda", "Errors",
			[]alarms.Dimension{{Name: "FunctionName", Value: "pv-api-prod-auth"}}, cwtypes.StatisticSum, 0, gt, 1, 1, alarms.MissingNotBreaching},
		{"valine-check-lambda-throttles-pv-api-prod-profiles", "AWS/Lambda", "Throttles",
			[]alarms.Dimension{{Name: "FunctionName", Value: "pv-api-prod-profiles"}}, cwtypes.StatisticSum, 0, gt, 1, 1, alarms.MissingNotBreaching},
		{"valine-check-probe-success-valine-api-prod", "Valine/Probe", "SuccessPercent",
			[]alarms.Dimension{{Name: "Check", Value: "all"}, {Name: "Deployment", Value: "valine-api-prod"}},
			cwtypes.StatisticAverage, 100, lt, 3, 2, alarms.MissingBreaching},
		{"valine-check-jwt-failures-pv-api-prod-auth", "Valine/Auth", "JWTVerificationFailures-pv-api-prod-auth",
			nil, cwtypes.StatisticSum, 25, gt, 1, 1, alarms.MissingNotBreaching},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := alarmByName(as, tc.name)
			if !ok {
				t.Fatal("not desired")
			}
			got := []any{a.Namespace, a.MetricName, a.Statistic, a.Threshold, a.Comparison, a.Evaluation, a.ToAlarm, a.TreatMissingData, a.Period}
			want := []any{tc.namespace, tc.metric, tc.stat, tc.threshold, tc.op, tc.evals, tc.toAlarm, tc.missing, int32(300)}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
			if len(a.Dimensions) != len(tc.dims) || len(tc.dims) > 0 && !reflect.DeepEqual(a.Dimensions, tc.dims) {
				t.Errorf("dimensions %v, want %v", a.Dimensions, tc.dims)
			}
		})
	}
	for _, a := range as {
		if a.TreatMissingData == "" {
			t.Errorf("%s: TreatMissingData not set", a.Name)
		}
		if !reflect.DeepEqual(a.AlarmActions, []string{cfg.SNSTopicARN}) || !reflect.DeepEqual(a.OKActions, []string{cfg.SNSTopicARN}) {
			t.Errorf("%s: actions %v / %v, want the SNS topic", a.Name, a.AlarmActions, a.OKActions)
		}
		if !strings.HasPrefix(a.Name, alarms.DefaultPrefix) || a.Description == "" {
			t.Errorf("%s: outside the prefix or without a description", a.Name)
		}
		if a.MetricName == "4XXError" && (a.Statistic == cwtypes.StatisticSum || a.Threshold >= 1) {
			t.Errorf("%s: 4XX must be a rate (Average of 0/1), not a count", a.Name)
		}
	}
	for _, f := range fs {
		if f.DefaultValue == nil || *f.DefaultValue != 0 || f.MetricValue != "1" || f.MetricNamespace != "Valine/Auth" {
			t.Errorf("filter %+v", f)
		}
	}

	// Without a topic, no actions at all.
	plain, _, err := alarms.Desired(restConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range plain {
		if len(a.AlarmActions)+len(a.OKActions) != 0 {
			t.Errorf("%s has actions without a topic", a.Name)
		}
	}
}

func TestDesiredHTTPAPIAndOptions(t *testing.T) {
	t.Parallel()
	th := alarms.DefaultThresholds()
	th.Client4xxRate = 0.2
	cfg := alarms.Config{
		APIID: "a1b2c3", Stage: "$default", Functions: []string{"fn"}, FailurePattern: `"JWT verification failed"`,
		Prefix: "pv-prod-", ProbeNamespace: "Acme/Probe", LogsNamespace: "Acme/Auth", Deployment: "prod eu", Thresholds: &th,
	}
	as, fs, err := alarms.Desired(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a4, ok := alarmByName(as, "pv-prod-apigw-4xx-rate-a1b2c3-default")
	if !ok || a4.MetricName != "4xx" || a4.Dimensions[0] != (alarms.Dimension{Name: "ApiId", Value: "a1b2c3"}) || a4.Threshold != 0.2 {
		t.Errorf("HTTP API 4xx alarm: %+v (found %v)", a4, ok)
	}
	probe, ok := alarmByName(as, "pv-prod-probe-success-prod-eu")
	if !ok || probe.Namespace != "Acme/Probe" || probe.Dimensions[1] != (alarms.Dimension{Name: "Deployment", Value: "prod eu"}) {
		t.Errorf("probe alarm: %+v (found %v)", probe, ok)
	}
	if fs[0].Name != "pv-prod-jwt-verification-failures" || fs[0].MetricNamespace != "Acme/Auth" || fs[0].Pattern != cfg.FailurePattern {
		t.Errorf("filter %+v", fs[0])
	}
	if got := cfg.DeploymentName(); got != "prod eu" {
		t.Errorf("DeploymentName = %q", got)
	}
	cfg.Deployment = ""
	if got := cfg.DeploymentName(); got != "a1b2c3-default" {
		t.Errorf("default DeploymentName = %q", got)
	}
}

func TestDesiredRefusesBadConfigs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want string
		edit       func(*alarms.Config)
	}{
		{"no API", "the API is missing", func(c *alarms.Config) { c.APIName = "" }},
		{"name and id", "not both", func(c *alarms.Config) { c.APIID = "abc" }},
		{"no stage", "stage is missing", func(c *alarms.Config) { c.Stage = "" }},
		{"no functions", "fleet is empty", func(c *alarms.Config) { c.Functions = nil }},
		{"repeated function", "listed twice", func(c *alarms.Config) { c.Functions = []string{"a", "a"} }},
		{"function ARN", "not a plain function name", func(c *alarms.Config) {
			c.Functions = []string{"arn:aws:lambda:us-east-1:1:function:x"}
		}},
		{"no failure pattern", "failure pattern is missing", func(c *alarms.Config) { c.FailurePattern = " " }},
		{"secondary-use pattern too long", "secondary-use pattern is longer", func(c *alarms.Config) { c.SecondaryPattern = strings.Repeat("x", 1025) }},
		{"bad prefix", "prefix", func(c *alarms.Config) { c.Prefix = "-has space" }},
		{"AWS namespace", "not start with AWS/", func(c *alarms.Config) { c.ProbeNamespace = "AWS/Lambda" }},
		{"topic not an ARN", "not an ARN", func(c *alarms.Config) { c.SNSTopicARN = "oncall" }},
		{"rate as a percentage", "fraction", func(c *alarms.Config) {
			th := alarms.DefaultThresholds()
			th.Client4xxRate = 5
			c.Thresholds = &th
		}},
		{"probe threshold above 100", "probe success threshold", func(c *alarms.Config) {
			th := alarms.DefaultThresholds()
			th.ProbeSuccessPercent = 101
			c.Thresholds = &th
		}},
		{"name too long", "longer than 255", func(c *alarms.Config) { c.APIName = strings.Repeat("x", 250) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := restConfig()
			tc.edit(&cfg)
			_, _, err := alarms.Desired(cfg)
			if !errors.Is(err, alarms.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	err := alarms.Config{}.Validate()
	for _, want := range []string{"API is missing", "stage is missing", "fleet is empty", "failure pattern"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of an empty config: %v, want it to mention %q", err, want)
		}
	}
}
