// Package rotate changes and reads where the JWT secret lives: the Lambda
// functions' environments (and, in later work, the Secrets Manager backup,
// the journal and the audit trail).
package rotate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
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
	// MaxAttempts bounds read-modify-write rounds lost to another writer or
	// to an update in progress (default 5).
	MaxAttempts int
	// Backoff is the first wait after a ResourceConflict (default 500 ms), doubling.
	Backoff time.Duration
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
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 5
	}
	if opt.Backoff <= 0 {
		opt.Backoff = 500 * time.Millisecond
	}
	if opt.MaxWait <= 0 {
		opt.MaxWait = 5 * time.Minute
	}
	wait := opt.Backoff
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
		case attempt >= opt.MaxAttempts:
			return nil, fmt.Errorf("updating %s: gave up after %d attempts: %w", function, attempt, err)
		case errors.As(err, &stale):
			// Another writer changed the function between our read and write:
			// read again so their change is kept.
			continue
		case errors.As(err, &busy):
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			wait *= 2
		default:
			return nil, fmt.Errorf("updating %s: %w", function, err)
		}
	}
}

func envSize(env map[string]string) (int, error) {
	b, err := json.Marshal(env)
	if err != nil {
		return 0, fmt.Errorf("measuring environment: %w", err)
	}
	return len(b), nil
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
// (plain or JSON-escaped) replaced by "[redacted]" in its message.
func redactValues(err error, envs ...map[string]string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, env := range envs {
		for _, v := range env {
			if len(v) < 4 { // too short to be a secret, too common to replace
				continue
			}
			msg = strings.ReplaceAll(msg, v, "[redacted]")
			if quoted, qerr := json.Marshal(v); qerr == nil {
				msg = strings.ReplaceAll(msg, string(quoted[1:len(quoted)-1]), "[redacted]")
			}
		}
	}
	if msg == err.Error() {
		return err
	}
	return redactedError{err: err, msg: msg}
}
