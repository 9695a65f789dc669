package alarms_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// In a grace period (primary new, secondary old) the API verifies a token
// signed with the old secret with the secondary and says so in its log;
// the secondary-use filter Desired creates turns those lines into the
// function's JWTSecondarySecretUse metric, which the dashboard graphs, and
// the failure filter beside it does not count them.
func TestSecondaryUseFilterCountsOldTokensInAGracePeriod(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	e.apply(t, e.cfg)
	ctx := t.Context()
	c := &probes.Client{BaseURL: e.w.APIURL, Profile: e.w.Profile}
	old, err := c.Login(ctx, e.w.ProbeEmail, secret.NewSecret(e.w.ProbePassword))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	since := time.Now()
	if err := e.w.SetSecrets(ctx, "new-secret-"+strings.Repeat("n", 40), e.w.InitialSecret()); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	fresh, err := c.Login(ctx, e.w.ProbeEmail, secret.NewSecret(e.w.ProbePassword))
	if err != nil {
		t.Fatalf("Login after the rotation: %v", err)
	}
	tampered, err := probes.TamperedSignature(fresh.Access)
	if err != nil {
		t.Fatal(err)
	}
	// Two old tokens (the secondary), one new (the primary), one refused.
	for _, r := range []struct {
		tok    secret.Token
		status int
	}{{old.Access, http.StatusOK}, {old.Access, http.StatusOK}, {fresh.Access, http.StatusOK}, {tampered, http.StatusUnauthorized}} {
		if resp, err := c.Me(ctx, r.tok); err != nil || resp.Status != r.status {
			t.Fatalf("Me: %+v, %v; want %d", resp, err, r.status)
		}
	}

	authFn, otherFn := e.w.Functions[0], e.w.Functions[1] // the API logs as the first function
	runs, err := e.w.RunMetricFilters(ctx, e.w.LogGroup, since)
	if err != nil {
		t.Fatalf("RunMetricFilters: %v", err)
	}
	matched := map[string]int{}
	for _, r := range runs {
		matched[r.Metric] = r.Matched
	}
	secondaryMetric, failureMetric := alarms.JWTSecondaryUseMetric+"-"+authFn, alarms.JWTFailuresMetric+"-"+authFn
	if len(runs) != 2 || matched[secondaryMetric] != 2 || matched[failureMetric] != 1 {
		t.Fatalf("filter runs on %s: %+v; want the secondary-use filter to match the 2 old tokens and the failure filter the 1 refusal", e.w.LogGroup, runs)
	}
	if _, err := e.w.RunMetricFilters(ctx, "/aws/lambda/"+otherFn, since); err != nil {
		t.Fatalf("RunMetricFilters on the other function: %v", err)
	}

	cw := e.cw
	for metric, want := range map[string]float64{
		secondaryMetric: 2,
		failureMetric:   1, // the refusal only: a token the secondary passed is no failure
		alarms.JWTSecondaryUseMetric + "-" + otherFn: 0, // its filter's default: the old tokens were not its
	} {
		if got, ok := metricSum(t, cw, alarms.DefaultLogsNamespace, metric, since); !ok || got != want {
			t.Errorf("%s: Sum %g (data: %v), want %g", metric, got, ok, want)
		}
	}
}

// metricSum adds up a dimensionless metric's Sum since since, and says
// whether there was any datapoint.
func metricSum(t *testing.T, cw *cloudwatch.Client, namespace, metric string, since time.Time) (float64, bool) {
	t.Helper()
	out, err := cw.GetMetricStatistics(t.Context(), &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String(namespace), MetricName: aws.String(metric),
		StartTime: aws.Time(since.Add(-10 * time.Minute).Truncate(time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		Period: aws.Int32(300), Statistics: []cwtypes.Statistic{cwtypes.StatisticSum},
	})
	if err != nil {
		t.Fatalf("GetMetricStatistics %s: %v", metric, err)
	}
	var sum float64
	for _, dp := range out.Datapoints {
		sum += aws.ToFloat64(dp.Sum)
	}
	return sum, len(out.Datapoints) > 0
}
