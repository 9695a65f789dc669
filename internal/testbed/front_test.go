package testbed_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/valine/valine-check/internal/testbed"
)

func TestRevisionIDPresentInEveryConfiguration(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := lambda.NewFromConfig(w.AWS)
	ctx := t.Context()

	cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(w.Function)})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration: %v", err)
	}
	rev := aws.ToString(cfg.RevisionId)
	if rev == "" {
		t.Fatal("GetFunctionConfiguration: empty RevisionId")
	}
	fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(w.Function)})
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if got := aws.ToString(fn.Configuration.RevisionId); got != rev {
		t.Errorf("GetFunction RevisionId = %q, want %q", got, rev)
	}
	var listed string
	pages := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{})
	for pages.HasMorePages() && listed == "" {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListFunctions: %v", err)
		}
		for _, f := range page.Functions {
			if aws.ToString(f.FunctionName) == w.Function {
				listed = aws.ToString(f.RevisionId)
			}
		}
	}
	if listed != rev {
		t.Errorf("ListFunctions RevisionId = %q, want %q", listed, rev)
	}
	arn, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: cfg.FunctionArn})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration by ARN: %v", err)
	}
	if got := aws.ToString(arn.RevisionId); got != rev {
		t.Errorf("by ARN RevisionId = %q, want %q", got, rev)
	}
}

func TestRevisionIDChangesOnUpdates(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := lambda.NewFromConfig(w.AWS)
	ctx := t.Context()
	env, rev0, err := w.Env(ctx, w.Function)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	env["FEATURE_FLAG"] = "on"
	up, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(w.Function), RevisionId: aws.String(rev0),
		Environment: &lambdatypes.Environment{Variables: env},
	})
	if err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %v", err)
	}
	rev1 := aws.ToString(up.RevisionId)
	if rev1 == "" || rev1 == rev0 {
		t.Fatalf("revision after configuration update = %q, was %q", rev1, rev0)
	}
	if _, got, _ := w.Env(ctx, w.Function); got != rev1 {
		t.Errorf("revision read back = %q, want %q", got, rev1)
	}
	code, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(w.Function), ZipFile: []byte("PK\x05\x06" + string(make([]byte, 18)))})
	if err != nil {
		t.Fatalf("UpdateFunctionCode: %v", err)
	}
	if rev2 := aws.ToString(code.RevisionId); rev2 == "" || rev2 == rev1 {
		t.Errorf("revision after code update = %q, was %q", rev2, rev1)
	}
}

func TestStaleRevisionIDIsRejected(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := lambda.NewFromConfig(w.AWS)
	ctx := t.Context()
	before, stale, err := w.Env(ctx, w.Function)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	if err := w.SetSecrets(ctx, "rotated-secret", ""); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	current, _, err := w.Env(ctx, w.Function)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(w.Function), RevisionId: aws.String(stale),
		Environment: &lambdatypes.Environment{Variables: before},
	})
	var pf *lambdatypes.PreconditionFailedException
	if !errors.As(err, &pf) {
		t.Fatalf("stale update: got %v, want *types.PreconditionFailedException", err)
	}
	after, _, err := w.Env(ctx, w.Function)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	if !maps.Equal(after, current) {
		t.Errorf("environment changed by a rejected update: %d vars, want %d", len(after), len(current))
	}
}

func TestConcurrentUpdatesWithOneRevisionOnlyOneWins(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := lambda.NewFromConfig(w.AWS)
	env, rev, err := w.Env(t.Context(), w.Function)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e := maps.Clone(env)
			e["WRITER"] = string(rune('a' + i))
			_, errs[i] = c.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String(w.Function), RevisionId: aws.String(rev),
				Environment: &lambdatypes.Environment{Variables: e},
			})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		var pf *lambdatypes.PreconditionFailedException
		switch {
		case err == nil:
			wins++
		case !errors.As(err, &pf):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent updates succeeded with one RevisionId, want 1", wins)
	}
}

func TestFaultsReachTheSDK(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	cfg := w.AWS.Copy()
	cfg.RetryMaxAttempts = 1
	lc := lambda.NewFromConfig(cfg)
	logs := cloudwatchlogs.NewFromConfig(cfg)
	getConfig := func(ctx context.Context) error {
		_, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(w.Function)})
		return err
	}
	updateConfig := func(ctx context.Context) error {
		_, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(w.Function), Description: aws.String("x")})
		return err
	}
	filter := func(ctx context.Context) error {
		_, err := logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(w.LogGroup)})
		return err
	}
	tests := []struct {
		name  string
		op    string
		fault testbed.Fault
		call  func(context.Context) error
		check func(error) bool
	}{
		{"lambda throttled", "lambda:GetFunctionConfiguration", testbed.Fault{Status: 429, ErrorType: "TooManyRequestsException", Message: "Rate exceeded"}, getConfig,
			func(err error) bool { var e *lambdatypes.TooManyRequestsException; return errors.As(err, &e) }},
		{"lambda service error", "lambda:UpdateFunctionConfiguration", testbed.Fault{Status: 500, ErrorType: "ServiceException", Message: "boom"}, updateConfig,
			func(err error) bool { var e *lambdatypes.ServiceException; return errors.As(err, &e) }},
		{"logs not found", "logs:FilterLogEvents", testbed.Fault{Status: 400, ErrorType: "ResourceNotFoundException", Message: "gone"}, filter,
			func(err error) bool { var e *cwltypes.ResourceNotFoundException; return errors.As(err, &e) }},
		{"logs throttled", "logs:FilterLogEvents", testbed.Fault{Status: 400, ErrorType: "ThrottlingException", Message: "Rate exceeded"}, filter,
			func(err error) bool {
				var e smithy.APIError
				return errors.As(err, &e) && e.ErrorCode() == "ThrottlingException"
			}},
		{"hang", "lambda:GetFunctionConfiguration", testbed.Fault{Delay: time.Minute}, getConfig,
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
				if testbed.FromTestbedAPI(r) {
					return nil
				}
				return &tt.fault
			})
			defer w.AWSFront.SetFault(nil)
			before := w.AWSFront.Calls(tt.op)
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			err := tt.call(ctx)
			if !tt.check(err) {
				t.Errorf("got %v (%T), want the configured fault", err, err)
			}
			if got := w.AWSFront.Calls(tt.op); got != before+1 {
				t.Errorf("Calls(%q) went from %d to %d, want +1", tt.op, before, got)
			}
			if tt.fault.Status == 0 {
				return
			}
			// The API's own reads are spared by the hook above: it still works.
			if r, _ := login(t, w, w.ProbeEmail, w.ProbePassword); r.status != http.StatusOK {
				t.Errorf("login during fault: status %d", r.status)
			}
		})
	}
	if err := getConfig(t.Context()); err != nil {
		t.Errorf("after SetFault(nil): %v", err)
	}
}

func TestFrontLatencyHonoursDeadlines(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	cfg := w.AWS.Copy()
	cfg.RetryMaxAttempts = 1
	c := lambda.NewFromConfig(cfg)
	w.AWSFront.SetLatency(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(w.Function)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with latency above the deadline: got %v, want deadline exceeded", err)
	}
	w.AWSFront.SetLatency(0)
	if _, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(w.Function)}); err != nil {
		t.Errorf("latency removed: %v", err)
	}
}

func TestClientCallsLeaveOutTheTestbedAPI(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{}) // PropagationDelay 0: the API reads its secrets on every request
	c := lambda.NewFromConfig(w.AWS)
	const op = "lambda:GetFunctionConfiguration"
	calls, client := w.AWSFront.Calls(op), w.AWSFront.ClientCalls(op)
	mustLogin(t, w)
	if _, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(w.Function)}); err != nil {
		t.Fatal(err)
	}
	if got := w.AWSFront.ClientCalls(op) - client; got != 1 {
		t.Errorf("ClientCalls(%q) grew by %d, want 1 (the test's own call)", op, got)
	}
	if got := w.AWSFront.Calls(op) - calls; got < 2 {
		t.Errorf("Calls(%q) grew by %d, want at least 2 (the test's call and the API's read)", op, got)
	}
}
