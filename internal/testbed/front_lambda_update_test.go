package testbed_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/valine/valine-check/internal/testbed"
)

// updateDuration is the modelled update time of these tests: long enough
// for a few local requests, short enough to keep them fast.
const updateDuration = 300 * time.Millisecond

// inUpdateWindow runs a scenario that starts an update and checks what
// holds while it is in progress, up to three times: a run that outlasted
// the update proves nothing either way (the update may have completed
// before a check ran), so its failures are dropped and it runs again once
// the update is over. run reports failures with fail and returns when its
// last in-progress check was done.
func inUpdateWindow(t *testing.T, w *testbed.World, run func(fail func(format string, args ...any)) time.Time) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		var failures []string
		began := time.Now()
		checked := run(func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) })
		if checked.Sub(began) < updateDuration || attempt == 3 {
			for _, f := range failures {
				t.Error(f)
			}
			if checked.Sub(began) >= updateDuration {
				t.Logf("three runs outlasted the %s update; the checks above may be spurious", updateDuration)
			}
			return
		}
		waitUpdated(t, lambda.NewFromConfig(w.AWS), w.Function, nil)
	}
}

// waitUpdated waits with the FunctionUpdatedV2 waiter, polling every 20-50
// ms, and returns the LastUpdateStatus of every poll; seen, when not nil,
// is called for each.
func waitUpdated(t *testing.T, c *lambda.Client, fn string, seen func(lambdatypes.LastUpdateStatus)) []lambdatypes.LastUpdateStatus {
	t.Helper()
	var statuses []lambdatypes.LastUpdateStatus
	waiter := lambda.NewFunctionUpdatedV2Waiter(c)
	err := waiter.Wait(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String(fn)}, 10*time.Second,
		func(o *lambda.FunctionUpdatedV2WaiterOptions) {
			o.MinDelay, o.MaxDelay = 20*time.Millisecond, 50*time.Millisecond
			inner := o.Retryable
			o.Retryable = func(ctx context.Context, in *lambda.GetFunctionInput, out *lambda.GetFunctionOutput, err error) (bool, error) {
				if err == nil && out.Configuration != nil {
					statuses = append(statuses, out.Configuration.LastUpdateStatus)
					if seen != nil {
						seen(out.Configuration.LastUpdateStatus)
					}
				}
				return inner(ctx, in, out, err)
			}
		})
	if err != nil {
		t.Fatalf("FunctionUpdatedV2 waiter: %v", err)
	}
	return statuses
}

// noRetries returns a Lambda client of w that tries each request once.
func noRetries(w *testbed.World) *lambda.Client {
	return lambda.NewFromConfig(w.AWS, func(o *lambda.Options) { o.Retryer = aws.NopRetryer{} })
}

func TestUpdateInProgressShowsAndRefusesAnotherUpdate(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{UpdateDuration: updateDuration})
	c := noRetries(w)
	ctx := t.Context()
	fn := aws.String(w.Function)
	round := 0
	inUpdateWindow(t, w, func(fail func(string, ...any)) time.Time {
		round++
		env, _, err := w.Env(ctx, w.Function)
		if err != nil {
			t.Fatalf("Env: %v", err)
		}
		env["ROUND"] = fmt.Sprint(round)
		up, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: fn, Environment: &lambdatypes.Environment{Variables: env},
		})
		if err != nil {
			t.Fatalf("first UpdateFunctionConfiguration: %v", err)
		}
		if up.LastUpdateStatus != lambdatypes.LastUpdateStatusInProgress {
			fail("the update's answer: LastUpdateStatus %q, want InProgress", up.LastUpdateStatus)
		}
		cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn})
		if err != nil {
			t.Fatalf("GetFunctionConfiguration: %v", err)
		}
		if cfg.LastUpdateStatus != lambdatypes.LastUpdateStatusInProgress || cfg.State != lambdatypes.StateActive {
			fail("GetFunctionConfiguration during the update: LastUpdateStatus %q, State %q; want InProgress, Active", cfg.LastUpdateStatus, cfg.State)
		}
		got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: fn})
		if err != nil {
			t.Fatalf("GetFunction: %v", err)
		}
		if s := got.Configuration.LastUpdateStatus; s != lambdatypes.LastUpdateStatusInProgress {
			fail("GetFunction during the update: LastUpdateStatus %q, want InProgress", s)
		}

		second := map[string]string{"SECOND": "refused"}
		_, errConfig := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: fn, Environment: &lambdatypes.Environment{Variables: second}, RevisionId: up.RevisionId,
		})
		_, errCode := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: fn, ZipFile: []byte("PK\x05\x06" + string(make([]byte, 18)))})
		checked := time.Now()
		for name, err := range map[string]error{"UpdateFunctionConfiguration": errConfig, "UpdateFunctionCode": errCode} {
			var conflict *lambdatypes.ResourceConflictException
			want := "The operation cannot be performed at this time. An update is in progress for resource: " + aws.ToString(up.FunctionArn)
			switch {
			case !errors.As(err, &conflict):
				fail("%s during the update: got %v, want *types.ResourceConflictException", name, err)
			case conflict.ErrorMessage() != want:
				fail("%s during the update: message %q, want %q", name, conflict.ErrorMessage(), want)
			}
		}
		return checked
	})

	waitUpdated(t, c, w.Function, nil)
	cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration: %v", err)
	}
	if cfg.LastUpdateStatus != lambdatypes.LastUpdateStatusSuccessful {
		t.Errorf("after the update: LastUpdateStatus %q, want Successful", cfg.LastUpdateStatus)
	}
	vars := cfg.Environment.Variables
	if vars["ROUND"] != fmt.Sprint(round) || vars["SECOND"] != "" {
		t.Errorf("environment after a refused update: ROUND=%q SECOND=%q; want the accepted update's and none", vars["ROUND"], vars["SECOND"])
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: fn, Description: aws.String("next")}); err != nil {
		t.Errorf("an update after the last one completed: %v", err)
	}
}

func TestUpdatedWaiterSeesInProgressThenSuccessful(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{UpdateDuration: updateDuration})
	c := noRetries(w)
	inUpdateWindow(t, w, func(fail func(string, ...any)) time.Time {
		if _, err := c.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(w.Function), Description: aws.String("waited for " + rand.Text()),
		}); err != nil {
			t.Fatalf("UpdateFunctionConfiguration: %v", err)
		}
		var first time.Time
		statuses := waitUpdated(t, c, w.Function, func(lambdatypes.LastUpdateStatus) {
			if first.IsZero() {
				first = time.Now()
			}
		})
		if len(statuses) < 2 || statuses[0] != lambdatypes.LastUpdateStatusInProgress ||
			statuses[len(statuses)-1] != lambdatypes.LastUpdateStatusSuccessful {
			fail("the waiter saw %v, want InProgress first and Successful last", statuses)
		}
		return first
	})
}

func TestWithoutUpdateDurationUpdatesCompleteAtOnce(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := noRetries(w)
	for i := range 3 {
		up, err := c.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(w.Function), Description: aws.String(fmt.Sprint("update ", i)),
		})
		if err != nil {
			t.Fatalf("update %d straight after the last: %v", i, err)
		}
		if up.LastUpdateStatus != lambdatypes.LastUpdateStatusSuccessful {
			t.Errorf("update %d: LastUpdateStatus %q, want Successful", i, up.LastUpdateStatus)
		}
	}
	if statuses := waitUpdated(t, c, w.Function, nil); len(statuses) != 1 {
		t.Errorf("the waiter polled %d times (%v), want once", len(statuses), statuses)
	}
}

// TestAPIServesThePreviousEnvironmentDuringAnUpdate: on AWS the execution
// environments of the previous configuration serve until the update
// completes; so do both backends of the testbed.
func TestAPIServesThePreviousEnvironmentDuringAnUpdate(t *testing.T) {
	t.Parallel()
	for name, backend := range map[string]testbed.Backend{"reference": testbed.BackendReference, "valine": testbed.BackendValine} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := startWorld(t, testbed.Options{Backend: backend, Busy: &testbed.BusyOptions{}, UpdateDuration: updateDuration})
			c := noRetries(w)
			var next string
			inUpdateWindow(t, w, func(fail func(string, ...any)) time.Time {
				env, _, err := w.Env(t.Context(), w.Function)
				if err != nil {
					t.Fatalf("Env: %v", err)
				}
				prev := env[w.Profile.SecretVar]
				next = "rotated-secret-" + rand.Text()
				env[w.Profile.SecretVar] = next
				if _, err := c.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
					FunctionName: aws.String(w.Function), Environment: &lambdatypes.Environment{Variables: env},
				}); err != nil {
					t.Fatalf("UpdateFunctionConfiguration: %v", err)
				}
				s := mustLogin(t, w)
				checked := time.Now()
				if !signedWith(s.access, prev) {
					fail("a login during the update was not signed with the previous secret")
				}
				return checked
			})
			waitUpdated(t, c, w.Function, nil)
			if s := mustLogin(t, w); !signedWith(s.access, next) {
				t.Error("a login after the update completed was not signed with the new secret")
			}
		})
	}
}

// TestWorldWritesWaitOutAnUpdateInProgress: SetSecrets and EditEnv, the
// World's own writes, meet ResourceConflict when an update is in progress
// and wait it out, keeping the change that was in progress.
func TestWorldWritesWaitOutAnUpdateInProgress(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{UpdateDuration: updateDuration})
	c := noRetries(w)
	ctx := t.Context()
	env, _, err := w.Env(ctx, w.Function)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	env["DEPLOYED"] = "yes"
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(w.Function), Environment: &lambdatypes.Environment{Variables: env},
	}); err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = w.SetSecrets(ctx, "set-by-the-world-"+rand.Text(), "") })
	wg.Go(func() {
		errs[1] = w.EditEnv(ctx, w.Function, func(env map[string]string) { env["EDITED"] = "yes" })
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a World write during an update: %v", err)
		}
	}
	after, _, err := w.Env(ctx, w.Function)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	if after["DEPLOYED"] != "yes" || after["EDITED"] != "yes" || !strings.HasPrefix(after[w.Profile.SecretVar], "set-by-the-world-") {
		t.Errorf("after the writes: DEPLOYED=%q EDITED=%q, secret set: %v; want every change kept",
			after["DEPLOYED"], after["EDITED"], strings.HasPrefix(after[w.Profile.SecretVar], "set-by-the-world-"))
	}
}

// TestLambdaUpdatesLogsEveryAcceptedUpdate: Front.LambdaUpdates lists the
// updates accepted since a time, in order, each done one update duration
// after it was accepted; a refused update is not in it.
func TestLambdaUpdatesLogsEveryAcceptedUpdate(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{UpdateDuration: updateDuration})
	c := noRetries(w)
	since := time.Now()
	update := func(i int) error {
		_, err := c.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(w.Function), Description: aws.String(fmt.Sprint("logged ", i)),
		})
		return err
	}
	if err := update(1); err != nil {
		t.Fatal(err)
	}
	var busy *lambdatypes.ResourceConflictException
	if err := update(2); !errors.As(err, &busy) {
		t.Logf("the second update was not refused (%v): the first may have finished already", err)
	}
	waitUpdated(t, c, w.Function, nil)
	if err := update(3); err != nil {
		t.Fatal(err)
	}
	got := w.AWSFront.LambdaUpdates(since)
	if len(got) != 2 {
		t.Fatalf("LambdaUpdates = %+v, want the two accepted updates", got)
	}
	for i, u := range got {
		if u.Function != w.Function || u.Done.Sub(u.Accepted) != updateDuration || u.Accepted.Before(since) {
			t.Errorf("update %d: %+v, want %s accepted after %s and done %s later", i, u, w.Function, since.Format(time.StampMicro), updateDuration)
		}
	}
	if !got[0].Accepted.Before(got[1].Accepted) {
		t.Errorf("updates out of order: %+v", got)
	}
	if later := w.AWSFront.LambdaUpdates(time.Now()); len(later) != 0 {
		t.Errorf("LambdaUpdates(now) = %+v, want none", later)
	}
}
