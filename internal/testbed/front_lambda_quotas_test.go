package testbed_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/valine/valine-check/internal/testbed"
)

// throttled reports whether err is Lambda's answer over a quota, checking
// the fields the SDK reads from it.
func throttled(t *testing.T, err error) bool {
	t.Helper()
	var tm *lambdatypes.TooManyRequestsException
	if !errors.As(err, &tm) {
		return false
	}
	if tm.Reason != lambdatypes.ThrottleReasonCallerRateLimitExceeded || tm.ErrorMessage() != "Rate exceeded" || aws.ToString(tm.Type) != "User" {
		t.Errorf("TooManyRequestsException: Reason %q, message %q, Type %q; want CallerRateLimitExceeded, Rate exceeded, User",
			tm.Reason, tm.ErrorMessage(), aws.ToString(tm.Type))
	}
	return true
}

func TestLambdaControlQuotaThrottlesABurst(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{LambdaQuotas: &testbed.LambdaQuotas{ControlPerSecond: 5}})
	c := noRetries(w)
	fn := aws.String(w.Function)
	const burst = 20
	var passed, refused int
	for range burst {
		_, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: fn})
		switch {
		case err == nil:
			passed++
		case throttled(t, err):
			refused++
		default:
			t.Fatalf("GetFunctionConfiguration: %v", err)
		}
	}
	if refused == 0 || passed < 5 {
		t.Errorf("a burst of %d GetFunctionConfiguration at 5/s: %d passed, %d throttled; want at least 5 passed and some throttled", burst, passed, refused)
	}
	for i := range burst {
		if _, err := c.GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: fn}); err != nil {
			t.Fatalf("GetFunction %d, at 100/s after the control burst: %v", i, err)
		}
	}
	want := testbed.LambdaQuotaStats{Control: passed, ControlThrottled: refused, GetFunction: burst, Throttled: refused}
	if got := w.AWSFront.LambdaQuotaStats(); got != want {
		t.Errorf("LambdaQuotaStats = %+v, want %+v", got, want)
	}
}

// TestLambdaQuotaClasses: with one token a bucket and next to no refill,
// the first request of each class passes and every later one of the class
// is throttled; GetPolicy and the other services are not limited.
func TestLambdaQuotaClasses(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{LambdaQuotas: &testbed.LambdaQuotas{ControlPerSecond: 0.001, GetFunctionPerSecond: 0.001}})
	c := noRetries(w)
	fn := aws.String(w.Function)
	cfg, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: fn})
	if err != nil {
		t.Fatalf("the first control request: %v", err)
	}
	if _, err := c.GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: fn}); err != nil {
		t.Fatalf("the first GetFunction: %v", err)
	}
	ctx := t.Context()
	tests := []struct {
		name      string
		call      func(context.Context) error
		throttled bool
	}{
		{"GetFunction", func(ctx context.Context) error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: fn})
			return err
		}, true},
		{"GetFunctionConfiguration", func(ctx context.Context) error {
			_, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn})
			return err
		}, true},
		{"UpdateFunctionConfiguration", func(ctx context.Context) error {
			_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: fn, Description: aws.String("x")})
			return err
		}, true},
		{"ListFunctions", func(ctx context.Context) error {
			_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
			return err
		}, true},
		{"ListTags", func(ctx context.Context) error {
			_, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: cfg.FunctionArn})
			return err
		}, true},
		{"TagResource", func(ctx context.Context) error {
			_, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: cfg.FunctionArn, Tags: map[string]string{"k": "v"}})
			return err
		}, true},
		{"UntagResource", func(ctx context.Context) error {
			_, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: cfg.FunctionArn, TagKeys: []string{"k"}})
			return err
		}, true},
		{"CreateFunction", func(ctx context.Context) error {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(uniqueName("tb-quota")), Role: aws.String("arn:aws:iam::000000000000:role/x"),
				Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Code: &lambdatypes.FunctionCode{ZipFile: []byte("PK\x05\x06" + string(make([]byte, 18)))}})
			return err
		}, true},
		{"GetPolicy", func(ctx context.Context) error {
			_, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: fn})
			return err
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(ctx)
			if got := throttled(t, err); got != tt.throttled {
				t.Errorf("throttled = %v (%v), want %v", got, err, tt.throttled)
			}
		})
	}
	got := w.AWSFront.LambdaQuotaStats()
	want := testbed.LambdaQuotaStats{Control: 1, ControlThrottled: 7, GetFunction: 1, GetFunctionThrottled: 1, Throttled: 8}
	if got != want {
		t.Errorf("LambdaQuotaStats = %+v, want %+v", got, want)
	}
}

// TestTestbedOwnRequestsDoNotConsumeLambdaQuotas: the API re-reads its
// function's configuration on every request (PropagationDelay 0) and the
// World writes through its own client; neither drains the one token the
// code under test has.
func TestTestbedOwnRequestsDoNotConsumeLambdaQuotas(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{LambdaQuotas: &testbed.LambdaQuotas{ControlPerSecond: 0.001, GetFunctionPerSecond: 0.001}})
	const op = "lambda:GetFunctionConfiguration"
	reads := w.AWSFront.Calls(op)
	for range 10 {
		if r, _ := login(t, w, w.ProbeEmail, w.ProbePassword); r.status != http.StatusOK {
			t.Fatalf("login under a quota of 0.001/s: %d %s", r.status, r.raw)
		}
	}
	if got := w.AWSFront.Calls(op) - reads; got < 10 {
		t.Fatalf("the API read its configuration %d times for 10 logins, want at least 10", got)
	}
	if err := w.SetSecrets(t.Context(), "set-under-a-quota-0123456789abcdef", ""); err != nil {
		t.Fatalf("SetSecrets under a quota: %v", err)
	}
	if got := (testbed.LambdaQuotaStats{}); w.AWSFront.LambdaQuotaStats() != got {
		t.Errorf("LambdaQuotaStats after the testbed's own requests = %+v, want none", w.AWSFront.LambdaQuotaStats())
	}
	c := noRetries(w)
	if _, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(w.Function)}); err != nil {
		t.Errorf("the client's first control request: %v, want the token the testbed left", err)
	}
	if _, err := c.GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String(w.Function)}); err != nil {
		t.Errorf("the client's first GetFunction: %v, want the token the World's waiter left", err)
	}
}

func TestWithoutLambdaQuotasNothingIsThrottled(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := noRetries(w)
	const n = 60 // four times AWS's control quota, at once
	for i := range n {
		if _, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(w.Function)}); err != nil {
			t.Fatalf("request %d without quotas: %v", i, err)
		}
	}
	if got, want := w.AWSFront.LambdaQuotaStats(), (testbed.LambdaQuotaStats{Control: n}); got != want {
		t.Errorf("LambdaQuotaStats = %+v, want %+v", got, want)
	}
}
