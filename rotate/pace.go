package rotate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"golang.org/x/time/rate"
)

// Lambda limits the request rate of every account and region, and the
// limits cannot be raised: 15 requests a second shared by every control-
// plane API (all but Invoke, GetFunction and GetPolicy) and 100 a second
// for GetFunction. Over them Lambda answers 429 TooManyRequestsException.
// A fleet rotation is bound by them, so every Lambda call of a run goes
// through one PacedLambda: it keeps the run under rates of its own, so the
// run never causes a 429 itself, and when another client of the account
// uses up the quota it backs off.

// Lambda's request-rate quotas, per account and region.
const (
	LambdaControlQuota     = 15
	LambdaGetFunctionQuota = 100
)

// LambdaPace is how a run paces its Lambda requests: the rates it allows
// itself, per second, and how long a 429 pauses it.
type LambdaPace struct {
	// Control is for the control-plane APIs (ListFunctions,
	// UpdateFunctionConfiguration, TagResource, …).
	Control float64
	// GetFunction is for GetFunction, which has a quota of its own.
	GetFunction float64
	// ThrottlePause is how long a 429 pauses every request of its quota,
	// plus a random part of up to half of it (default 1 s: Lambda's
	// Retry-After).
	ThrottlePause time.Duration
}

// DefaultLambdaPace keeps a run just under Lambda's quotas (14 of 15, 90
// of 100 a second), leaving a little to the account's other clients; when
// they need more, their use shows as 429s, which PacedLambda backs off
// from.
var DefaultLambdaPace = LambdaPace{Control: 14, GetFunction: 90, ThrottlePause: time.Second}

// Validate reports a rate that is not positive or above Lambda's quota
// (for rates a user gives; tests may pace faster than AWS allows).
func (r LambdaPace) Validate() error {
	switch {
	case !(r.Control > 0 && r.Control <= LambdaControlQuota):
		return fmt.Errorf("control-plane rate %g requests a second is outside (0, %d], Lambda's quota", r.Control, LambdaControlQuota)
	case !(r.GetFunction > 0 && r.GetFunction <= LambdaGetFunctionQuota):
		return fmt.Errorf("GetFunction rate %g requests a second is outside (0, %d], Lambda's quota", r.GetFunction, LambdaGetFunctionQuota)
	}
	return nil
}

// LambdaCalls counts the requests a PacedLambda sent, by quota, and the
// 429s it received (each one was backed off from and sent again).
type LambdaCalls struct {
	Control, GetFunction int
	Throttled            int
}

type quotaClass int

const (
	classControl quotaClass = iota
	classGetFunction
)

// PacedLambda is a LambdaClient that paces every request under its rates
// (one token bucket per quota, burst 1, so requests are spread evenly
// instead of bunched) and sends a throttled request again after backing
// off: a 429 pauses every request of its quota (LambdaPace.ThrottlePause), since
// another client of the account is using it. The SDK's own retryer is told
// to leave 429s to it, so that every attempt is paced.
type PacedLambda struct {
	api LambdaClient
	// ThrottleDeadline bounds how long one call keeps being sent again
	// after 429s (default 2 min); past it the 429 is returned.
	ThrottleDeadline time.Duration

	pause   time.Duration
	buckets [2]*rate.Limiter
	mu      sync.Mutex
	paused  [2]time.Time // no request of the class before this
	sent    [2]atomic.Int64
	refused atomic.Int64
}

// NewPacedLambda paces api (zero fields of pace take DefaultLambdaPace's).
// An api that is already a *PacedLambda is returned as it is, so that a
// run has one pace however it was handed the client.
func NewPacedLambda(api LambdaClient, pace LambdaPace) *PacedLambda {
	if p, ok := api.(*PacedLambda); ok {
		return p
	}
	rates := pace
	if rates.Control <= 0 {
		rates.Control = DefaultLambdaPace.Control
	}
	if rates.GetFunction <= 0 {
		rates.GetFunction = DefaultLambdaPace.GetFunction
	}
	if rates.ThrottlePause <= 0 {
		rates.ThrottlePause = DefaultLambdaPace.ThrottlePause
	}
	return &PacedLambda{
		api:   api,
		pause: rates.ThrottlePause,
		buckets: [2]*rate.Limiter{
			classControl:     rate.NewLimiter(rate.Limit(rates.Control), 1),
			classGetFunction: rate.NewLimiter(rate.Limit(rates.GetFunction), 1),
		},
	}
}

// Calls returns the requests sent so far, by quota, and the 429s received.
func (p *PacedLambda) Calls() LambdaCalls {
	return LambdaCalls{
		Control:     int(p.sent[classControl].Load()),
		GetFunction: int(p.sent[classGetFunction].Load()),
		Throttled:   int(p.refused.Load()),
	}
}

// admission is a control-plane request's turn, already waited for: the
// next control-plane call made with the context carrying it goes at once.
type admission struct {
	owner  *PacedLambda
	unused atomic.Bool
}

type admissionKey struct{}

// admit waits for the next control-plane turn and returns ctx carrying
// it. Updates dispatched one after another through admit are sent in that
// order, however the goroutines sending them are scheduled.
func (p *PacedLambda) admit(ctx context.Context) (context.Context, error) {
	if err := p.wait(ctx, classControl); err != nil {
		return ctx, err
	}
	a := &admission{owner: p}
	a.unused.Store(true)
	return context.WithValue(ctx, admissionKey{}, a), nil
}

// wait blocks until a request of class may be sent.
func (p *PacedLambda) wait(ctx context.Context, class quotaClass) error {
	if a, ok := ctx.Value(admissionKey{}).(*admission); ok && class == classControl && a.owner == p && a.unused.CompareAndSwap(true, false) {
		return nil
	}
	if err := p.waitPause(ctx, class); err != nil {
		return err
	}
	if err := p.buckets[class].Wait(ctx); err != nil {
		return err
	}
	return p.waitPause(ctx, class) // a 429 may have come in while this one queued
}

func (p *PacedLambda) waitPause(ctx context.Context, class quotaClass) error {
	p.mu.Lock()
	until := p.paused[class]
	p.mu.Unlock()
	if d := time.Until(until); d > 0 {
		return sleep(ctx, d)
	}
	return nil
}

// throttled pauses class after a 429: the pause and a random part of half
// of it, so that paced runs sharing an account do not come back in step.
func (p *PacedLambda) throttled(class quotaClass) {
	p.refused.Add(1)
	until := time.Now().Add(p.pause + time.Duration(rand.Int64N(int64(p.pause/2)+1)))
	p.mu.Lock()
	if until.After(p.paused[class]) {
		p.paused[class] = until
	}
	p.mu.Unlock()
}

// call sends one request of class through send, paced, again after each
// 429 within ThrottleDeadline.
func call[T any](ctx context.Context, p *PacedLambda, class quotaClass, send func(optFns ...func(*lambda.Options)) (T, error), optFns []func(*lambda.Options)) (T, error) {
	deadline := p.ThrottleDeadline
	if deadline <= 0 {
		deadline = 2 * time.Minute
	}
	giveUp := time.Now().Add(deadline)
	opts := append(append([]func(*lambda.Options){}, optFns...), leaveThrottlesToCaller)
	for {
		if err := p.wait(ctx, class); err != nil {
			var zero T
			return zero, err
		}
		p.sent[class].Add(1)
		out, err := send(opts...)
		if err == nil || !isThrottle(err) || time.Now().After(giveUp) {
			return out, err
		}
		p.throttled(class)
	}
}

// isThrottle reports whether err is a throttling answer (429
// TooManyRequestsException and the SDK's other throttle codes).
func isThrottle(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// leaveThrottlesToCaller makes the SDK return a 429 instead of retrying
// it, so that PacedLambda paces the next attempt.
func leaveThrottlesToCaller(o *lambda.Options) {
	if r, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = throttlesNotRetried{r}
	}
}

type throttlesNotRetried struct{ aws.RetryerV2 }

func (r throttlesNotRetried) IsErrorRetryable(err error) bool {
	return !isThrottle(err) && r.RetryerV2.IsErrorRetryable(err)
}

// GetFunction is paced by the GetFunction quota.
func (p *PacedLambda) GetFunction(ctx context.Context, in *lambda.GetFunctionInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	return call(ctx, p, classGetFunction, func(o ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
		return p.api.GetFunction(ctx, in, o...)
	}, optFns)
}

// UpdateFunctionConfiguration is paced by the control-plane quota.
func (p *PacedLambda) UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	return call(ctx, p, classControl, func(o ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
		return p.api.UpdateFunctionConfiguration(ctx, in, o...)
	}, optFns)
}

// ListFunctions is paced by the control-plane quota.
func (p *PacedLambda) ListFunctions(ctx context.Context, in *lambda.ListFunctionsInput, optFns ...func(*lambda.Options)) (*lambda.ListFunctionsOutput, error) {
	return call(ctx, p, classControl, func(o ...func(*lambda.Options)) (*lambda.ListFunctionsOutput, error) {
		return p.api.ListFunctions(ctx, in, o...)
	}, optFns)
}

// TagResource is paced by the control-plane quota.
func (p *PacedLambda) TagResource(ctx context.Context, in *lambda.TagResourceInput, optFns ...func(*lambda.Options)) (*lambda.TagResourceOutput, error) {
	return call(ctx, p, classControl, func(o ...func(*lambda.Options)) (*lambda.TagResourceOutput, error) {
		return p.api.TagResource(ctx, in, o...)
	}, optFns)
}

// UntagResource is paced by the control-plane quota.
func (p *PacedLambda) UntagResource(ctx context.Context, in *lambda.UntagResourceInput, optFns ...func(*lambda.Options)) (*lambda.UntagResourceOutput, error) {
	return call(ctx, p, classControl, func(o ...func(*lambda.Options)) (*lambda.UntagResourceOutput, error) {
		return p.api.UntagResource(ctx, in, o...)
	}, optFns)
}
