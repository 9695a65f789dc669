// Package rotate changes where the JWT secret lives: the Lambda functions'
// environments (read-modify-write), the Secrets Manager backup, the
// journal's write side, the fleet's lock and owner tags, and the audit
// trail; the Engine drives a rotation through them and judges each change
// with the probes.
package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/valine/valine-check/internal/secret"
)

// LambdaAPI is the Lambda calls rotation makes, with the SDK's exact
// signatures, so the real client and a small fake both satisfy it.
type LambdaAPI interface {
	GetFunction(ctx context.Context, in *lambda.GetFunctionInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
	GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
	UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error)
}

// MaxEnvBytes is Lambda's limit on a function's environment variables,
// measured here as their JSON encoding.
const MaxEnvBytes = 4096

// ErrEnvTooLarge is returned, before any call, when a change would push the
// environment past MaxEnvBytes.
var ErrEnvTooLarge = errors.New("environment would exceed Lambda's 4 KB limit")

// EnvUpdate tunes UpdateEnv. Zero values give the defaults.
type EnvUpdate struct {
	// Deadline bounds the read-modify-write rounds lost to another writer
	// (PreconditionFailed) or to an update in progress (ResourceConflict)
	// (default 2 min): a busy writer is waited out, not given up on.
	Deadline time.Duration
	// Backoff is the first wait after a lost round (default 200 ms); it
	// doubles up to MaxBackoff (default 5 s), each wait drawn at random up
	// to its bound ("full jitter"), so two writers stop colliding.
	Backoff, MaxBackoff time.Duration
	// MaxWait bounds the FunctionUpdatedV2 waiter (default 5 min).
	MaxWait time.Duration
}

// UpdateEnv applies change to a function's environment by read-modify-write
// of the whole map: Lambda replaces the environment wholesale, so every
// variable change does not touch is written back byte for byte. The write
// carries the RevisionId that was read; if another writer got there first
// (PreconditionFailed) the round starts again from a fresh read, and an
// update in progress (ResourceConflict) is waited out. After the write it
// waits with the FunctionUpdatedV2 waiter, never a fixed sleep. It returns
// the environment as written; change returning an error aborts with no write.
func UpdateEnv(ctx context.Context, api LambdaAPI, function string, change func(env map[string]string) error, opt EnvUpdate) (map[string]string, error) {
	if opt.Deadline <= 0 {
		opt.Deadline = 2 * time.Minute
	}
	if opt.Backoff <= 0 {
		opt.Backoff = 200 * time.Millisecond
	}
	if opt.MaxBackoff < opt.Backoff {
		opt.MaxBackoff = max(5*time.Second, opt.Backoff)
	}
	if opt.MaxWait <= 0 {
		opt.MaxWait = 5 * time.Minute
	}
	giveUp := time.Now().Add(opt.Deadline)
	bound := opt.Backoff
	for attempt := 1; ; attempt++ {
		cfg, err := api.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(function)})
		if err != nil {
			return nil, fmt.Errorf("reading %s configuration: %w", function, err)
		}
		current := map[string]string{}
		if cfg.Environment != nil {
			maps.Copy(current, cfg.Environment.Variables)
		}
		next := maps.Clone(current)
		if err := change(next); err != nil {
			return nil, fmt.Errorf("changing %s environment: %w", function, err)
		}
		if maps.Equal(current, next) {
			return next, nil
		}
		if size, err := envSize(next); err != nil {
			return nil, err
		} else if size > MaxEnvBytes {
			return nil, fmt.Errorf("%s: %w (%d bytes)", function, ErrEnvTooLarge, size)
		}
		_, err = api.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(function),
			Environment:  &types.Environment{Variables: next},
			RevisionId:   cfg.RevisionId,
		})
		// Lambda's errors can quote the environment (its 4 KB error
		// prints the whole measured string): never pass a value on.
		err = redactValues(err, current, next)
		var stale *types.PreconditionFailedException
		var busy *types.ResourceConflictException
		switch {
		case err == nil:
			waiter := lambda.NewFunctionUpdatedV2Waiter(api)
			if err := waiter.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(function)}, opt.MaxWait); err != nil {
				return nil, fmt.Errorf("waiting for %s to finish updating: %w", function, err)
			}
			return next, nil
		case !errors.As(err, &stale) && !errors.As(err, &busy):
			return nil, fmt.Errorf("updating %s: %w", function, err)
		}
		// Another writer changed the function between our read and write
		// (read again so their change is kept), or an update is in
		// progress: wait a random while, longer each round, within the
		// deadline.
		pause := time.Duration(rand.Int64N(int64(bound)) + 1)
		if time.Now().Add(pause).After(giveUp) {
			return nil, fmt.Errorf("updating %s: gave up after %d attempts over %s (another writer kept changing it, or an update stayed in progress): %w",
				function, attempt, opt.Deadline, err)
		}
		if err := sleep(ctx, pause); err != nil {
			return nil, err
		}
		bound = min(2*bound, opt.MaxBackoff)
	}
}

// envSize measures an environment as Lambda does: its JSON without HTML
// escaping (json.Marshal would count each &, < and > as six bytes).
func envSize(env map[string]string) (int, error) {
	b, err := jsonNoHTML(env)
	if err != nil {
		return 0, fmt.Errorf("measuring environment: %w", err)
	}
	return len(b), nil
}

// jsonNoHTML encodes v as JSON without escaping &, < and >.
func jsonNoHTML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// redactedError carries an error whose message had environment values
// replaced; errors.As and errors.Is still reach the original.
type redactedError struct {
	err error
	msg string
}

func (r redactedError) Error() string { return r.msg }
func (r redactedError) Unwrap() error { return r.err }

// redactValues returns err with every value of the given environments
// replaced by "[redacted]" in its message, in whatever escaped form Lambda
// quoted it (probes.Redactor). errors.As and errors.Is still reach the
// original.
func redactValues(err error, envs ...map[string]string) error {
	if err == nil {
		return nil
	}
	red := secret.NewRedactor()
	for _, env := range envs {
		for _, v := range env {
			red.Add(v)
		}
	}
	msg := red.Redact(err.Error())
	if msg == err.Error() {
		return err
	}
	return redactedError{err: err, msg: msg}
}
