package testbed

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// functionRole is the execution role every testbed function claims; kumo
// does not check it.
const functionRole = "arn:aws:iam::000000000000:role/valine"

// createFunction creates fn with env and tags, a tiny custom-runtime zip,
// and waits until it is Active. The tags go in CreateFunction itself, as a
// deploy tool sets them (kumo stores them), so no listing ever sees the
// function untagged.
func createFunction(ctx context.Context, c *lambda.Client, fn string, env, tags map[string]string) error {
	code, err := bootstrapZip()
	if err != nil {
		return err
	}
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(fn),
		Runtime:      lambdatypes.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String(functionRole),
		Code:         &lambdatypes.FunctionCode{ZipFile: code},
		Environment:  &lambdatypes.Environment{Variables: env},
		Description:  aws.String("Valine API (testbed)"),
		Tags:         maps.Clone(tags),
	})
	if err != nil {
		return fmt.Errorf("creating function %s: %w", fn, err)
	}
	waiter := lambda.NewFunctionActiveV2Waiter(c)
	if err := waiter.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}, 30*time.Second); err != nil {
		return fmt.Errorf("waiting for function %s: %w", fn, err)
	}
	return nil
}

// bootstrapZip returns a zip holding a shell "bootstrap" that does nothing;
// kumo stores the code without running it.
func bootstrapZip() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create("bootstrap")
	if err != nil {
		return nil, fmt.Errorf("building function code: %w", err)
	}
	if _, err := f.Write([]byte("#!/bin/sh\nexit 0\n")); err != nil {
		return nil, fmt.Errorf("building function code: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("building function code: %w", err)
	}
	return buf.Bytes(), nil
}

// createLogGroup creates a log group.
func createLogGroup(ctx context.Context, c *cloudwatchlogs.Client, group string) error {
	if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		return fmt.Errorf("creating log group %s: %w", group, err)
	}
	return nil
}

// startAPI builds the Valine API on its own SDK clients (tagged so a fault
// hook can recognise them), reads its secrets once (with BackendValine:
// starts its first execution environment), creates its log stream, seeds
// the probe user and starts listening.
func (w *World) startAPI(ctx context.Context) (*API, error) {
	o := w.opts
	cfg := awsConfig(w.Region, w.AWSURL, testbedAPIAppID)
	logs := cloudwatchlogs.NewFromConfig(cfg)
	stream := time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + randomHex(16)
	// The stream's name is random, so "already exists" can only be the
	// SDK's retry of a create that did reach kumo (seen on a loaded
	// machine): the stream is there, which is what was asked.
	var exists *logstypes.ResourceAlreadyExistsException
	if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{
		LogGroupName: aws.String(w.LogGroup), LogStreamName: aws.String(stream),
	}); err != nil && !errors.As(err, &exists) {
		return nil, fmt.Errorf("creating the api log stream: %w", err)
	}
	lc := lambda.NewFromConfig(cfg)
	a := &API{
		profile: o.Profile,
		secrets: &secretSource{
			client:     lc,
			function:   w.Function,
			primaryVar: o.Profile.SecretVar,
			secondVar:  o.Profile.SecondaryVar,
			delay:      o.PropagationDelay,
			log:        o.Logger,
			served:     w.AWSFront.servedConfiguration,
		},
		logs:       &logWriter{client: logs, group: w.LogGroup, stream: stream, log: o.Logger},
		users:      newUserStore(),
		accessTTL:  o.AccessTTL,
		refreshTTL: o.RefreshTTL,
		log:        o.Logger,
	}
	a.misbehaviours.Store(uint64(o.Misbehaviours))
	a.latency.Store(int64(o.Latency))
	a.busy.set(o.Busy.Every, o.Busy.RetryAfterSeconds)
	a.users.add(o.ProbeEmail, o.ProbePassword)
	if o.RuntimeSecrets != nil {
		// The store, read through the API's own clients (FromTestbedAPI).
		rs, err := newRuntimeSecrets(o.RuntimeSecrets, cfg, o.Logger)
		if err != nil {
			return nil, fmt.Errorf("starting the api: %w", err)
		}
		a.runtime, a.secrets = rs, rs
	}
	if o.Backend == BackendValine {
		// The secondary variable is never read: the real module knows one.
		a.valine = &valineRuntime{
			client:    lc,
			function:  w.Function,
			secretVar: o.Profile.SecretVar,
			fromStore: a.runtime != nil,
			served:    w.AWSFront.servedConfiguration,
			delay:     o.PropagationDelay,
			log:       o.Logger,
		}
		if _, err := a.valine.current(ctx); err != nil {
			return nil, fmt.Errorf("starting the api: %w", err)
		}
	}
	if o.Backend != BackendValine || a.runtime != nil {
		if _, err := a.secrets.get(ctx); err != nil {
			return nil, fmt.Errorf("starting the api: %w", err)
		}
	}
	if err := a.listen(); err != nil {
		return nil, err
	}
	return a, nil
}
