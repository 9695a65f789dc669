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

// LambdaAPI is the Lambda calls UpdateEnv makes, with the SDK's exact
// signatures, so the real client and a small fake both satisfy it. It reads
// with GetFunction (a quota of its own, 100 a second) and writes with
// UpdateFunctionConfiguration (the control plane's 15).
type LambdaAPI interface {
	GetFunction(ctx context.Context, in *lambda.GetFunctionInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
	UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error)
}

// MaxEnvBytes is Lambda's limit on a function's environment variables,
// measured here as their JSON encoding.
const MaxEnvBytes = 4096

// ErrEnvTooLarge is returned, before any call, when a change would push the
// environment past MaxEnvBytes.
var ErrEnvTooLarge = errors.New("environment would exceed Lambda's 4 KB limit")

// FunctionConfig is a function's whole environment as last read or as an
// update left it, and the RevisionId it was at. It holds every variable's
// value, for the next write to keep them; it prints only its revision and
// size.
type FunctionConfig struct {
	Env        map[string]string
	RevisionID string
}

// String says which revision, never a value.
func (c FunctionConfig) String() string {
	return fmt.Sprintf("revision %s, %d variables", c.RevisionID, len(c.Env))
}

// GoString is String, so %#v prints no value either.
func (c FunctionConfig) GoString() string { return c.String() }

// configOf copies what a write needs from a configuration.
func configOf(cfg *types.FunctionConfiguration) FunctionConfig {
	c := FunctionConfig{Env: map[string]string{}, RevisionID: aws.ToString(cfg.RevisionId)}
	if cfg.Environment != nil {
		maps.Copy(c.Env, cfg.Environment.Variables)
	}
	return c
}

// EnvUpdate tunes UpdateEnv. Zero values give the defaults.
type EnvUpdate struct {
	// Known is the function as this caller last read or wrote it. The
	// first round writes over it, with its RevisionId, instead of reading
	// again; if the function changed since, Lambda refuses the write
	// (PreconditionFailed) and the next round reads.
	Known *FunctionConfig
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
	// PollMin and PollMax bound the waiter's delays between its
	// GetFunction polls (default 500 ms both: a flat half-second poll).
	// AWS's defaults for this waiter, 1 s growing to 300 s, suit one
	// function; an update takes a second or a few, so a short, flat poll
	// sees its end sooner and at the same lag for every function (the
	// updates are already spread out by the request rate), and a fleet's
	// polls stay well inside GetFunction's quota.
	PollMin, PollMax time.Duration
}

func (o EnvUpdate) withDefaults() EnvUpdate {
	if o.Deadline <= 0 {
		o.Deadline = 2 * time.Minute
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(5*time.Second, o.Backoff)
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 5 * time.Minute
	}
	if o.PollMin <= 0 {
		o.PollMin = 500 * time.Millisecond
	}
	if o.PollMax < o.PollMin {
		o.PollMax = o.PollMin
	}
	return o
}

// EnvResult is what UpdateEnv did.
type EnvResult struct {
	// Config is the function as its update settled (the waiter's last
	// GetFunction), or as found when there was nothing to change.
	Config FunctionConfig
	// Changed says an update was made; Settled is when the waiter saw it
	// finish (the function then serves the new environment).
	Changed bool
	Settled time.Time
	// Writes counts the UpdateFunctionConfiguration requests sent.
	Writes int
}

// UpdateEnv applies change to a function's environment by read-modify-write
// of the whole map: Lambda replaces the environment wholesale, so every
// variable change does not touch is written back byte for byte. The write
// carries the RevisionId that was read (or opt.Known's); if another writer
// got there first (PreconditionFailed) the round starts again from a fresh
// read, and an update in progress (ResourceConflict) is waited out. After
// the write it waits with the FunctionUpdatedV2 waiter, never a fixed
// sleep, and returns the function as it settled; change returning an
// error aborts with no write.
func UpdateEnv(ctx context.Context, api LambdaAPI, function string, change func(env map[string]string) error, opt EnvUpdate) (EnvResult, error) {
	opt = opt.withDefaults()
	giveUp := time.Now().Add(opt.Deadline)
	bound := opt.Backoff
	known := opt.Known
	var res EnvResult
	for attempt := 1; ; attempt++ {
		var current FunctionConfig
		if known != nil {
			current, known = *known, nil
		} else {
			out, err := api.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(function)})
			if err != nil {
				return res, fmt.Errorf("reading %s configuration: %w", function, err)
			}
			if out.Configuration == nil {
				return res, fmt.Errorf("reading %s configuration: GetFunction returned none", function)
			}
			current = configOf(out.Configuration)
		}
		next := maps.Clone(current.Env)
		if err := change(next); err != nil {
			return res, fmt.Errorf("changing %s environment: %w", function, err)
		}
		if maps.Equal(current.Env, next) {
			res.Config = current
			return res, nil
		}
		if size, err := envSize(next); err != nil {
			return res, err
		} else if size > MaxEnvBytes {
			return res, fmt.Errorf("%s: %w (%d bytes)", function, ErrEnvTooLarge, size)
		}
		res.Writes++
		_, err := api.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(function),
			Environment:  &types.Environment{Variables: next},
			RevisionId:   aws.String(current.RevisionID),
		})
		// Lambda's errors can quote the environment (its 4 KB error
		// prints the whole measured string): never pass a value on.
		err = redactValues(err, current.Env, next)
		var stale *types.PreconditionFailedException
		var busy *types.ResourceConflictException
		switch {
		case err == nil:
			res.Changed = true
			waiter := lambda.NewFunctionUpdatedV2Waiter(api, func(w *lambda.FunctionUpdatedV2WaiterOptions) {
				w.MinDelay, w.MaxDelay = opt.PollMin, opt.PollMax
			})
			out, err := waiter.WaitForOutput(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(function)}, opt.MaxWait)
			if err != nil {
				return res, fmt.Errorf("waiting for %s to finish updating: %w", function, redactValues(err, current.Env, next))
			}
			res.Settled = time.Now()
			res.Config = FunctionConfig{Env: next}
			if out != nil && out.Configuration != nil {
				res.Config = configOf(out.Configuration)
			}
			return res, nil
		case !errors.As(err, &stale) && !errors.As(err, &busy):
			return res, fmt.Errorf("updating %s: %w", function, err)
		}
		// Another writer changed the function between our read and write
		// (read again so their change is kept), or an update is in
		// progress: wait a random while, longer each round, within the
		// deadline.
		pause := time.Duration(rand.Int64N(int64(bound)) + 1)
		if time.Now().Add(pause).After(giveUp) {
			return res, fmt.Errorf("updating %s: gave up after %d attempts over %s (another writer kept changing it, or an update stayed in progress): %w",
				function, attempt, opt.Deadline, err)
		}
		if err := sleep(ctx, pause); err != nil {
			return res, err
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
