package probes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/valine/valine-check/internal/secret"
)

// Expect is what a run expects of the old secret.
type Expect string

// The expectations. Strict follows a maintenance or emergency rotation (or a
// finalize): the old secret must be refused. Grace is the zero-downtime grace
// period: the old secret must still be honoured through the secondary variable.
const (
	Strict Expect = "strict"
	Grace  Expect = "grace"
)

// ParseExpect accepts "strict" or "grace".
func ParseExpect(s string) (Expect, error) {
	switch Expect(s) {
	case Strict, Grace:
		return Expect(s), nil
	}
	return "", fmt.Errorf("expect %q: must be strict or grace", s)
}

// LogsAPI is the one CloudWatch Logs call the probes make, with the SDK's
// exact signature, so the real client and a small fake both satisfy it.
type LogsAPI interface {
	FilterLogEvents(ctx context.Context, in *cloudwatchlogs.FilterLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error)
}

// Target is what a probe runs against.
type Target struct {
	// API speaks the deployment's auth API.
	API *Client
	// Session is the probe user's session, set by the runner once login passed.
	Session *Session
	// Function is the Lambda function whose log group (/aws/lambda/<Function>) is read; "" skips the log check.
	Function string
	// Logs reads that log group; nil skips the log check.
	Logs LogsAPI
	// Deliberate records the requests the probes send expecting a refusal,
	// so the log check can leave them out; nil means the runner keeps one
	// per run. A rotation shares one across its steps.
	Deliberate *DeliberateLog
}

// Config is the inputs of a run that are not the target. Secrets and tokens
// are typed so that they print as fingerprints.
type Config struct {
	// Expect chooses old-token-rejected (strict) or old-token-accepted (grace).
	Expect Expect
	// ProbeEmail and ProbePassword are the probe user's credentials.
	ProbeEmail    string
	ProbePassword secret.Secret
	// OldToken is a token issued before the rotation; optional.
	OldToken secret.Token
	// OldRefresh is a refresh token issued before the rotation (a
	// rotation keeps its baseline's); optional: without it one is forged
	// from a fresh refresh token's claims and OldSecret.
	OldRefresh secret.Token
	// OldSecret is the secret that was replaced; with it an old token is
	// forged from a fresh token's claims, so nobody has to keep a token from
	// before the rotation. Optional.
	OldSecret secret.Secret
	// CurrentSecret is the secret now in force; optional. With it the runner
	// also checks that fresh tokens are signed with it, and the security
	// battery tries HS512 and expired tokens signed with it.
	CurrentSecret secret.Secret
	// LogsSince is the start of the window the log check reads (the rotation time).
	LogsSince time.Time
	// LogsUntil ends that window; zero means the start of the run, so the
	// run's own deliberate rejections are not counted as failures.
	LogsUntil time.Time
	// LogsThroughRun ends the window instead when the log check starts,
	// which the runner then schedules after every other check of the run:
	// a rotation's window spans the change and its whole verification. The
	// run's own deliberate rejections are left out by time (DeliberateLog).
	LogsThroughRun bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Probe is a check's function. It records its own facts in the Result; the
// runner owns timing, deadlines, ordering and retries.
type Probe func(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result

// fromCallError turns a failed API call into a Result: no answer at all,
// or one that says nothing about tokens (5xx, 429), is an environment
// error; a wrong answer is a failure.
func fromCallError(what string, err error) Result {
	var se *StatusError
	var busy *UnavailableError
	switch {
	case errors.As(err, &busy):
		r := errored(fmt.Sprintf("%s: %v", what, err), map[string]any{"status": busy.Response.Status})
		r.transient, r.retryAfter = true, busy.RetryAfter
		return r
	case errors.As(err, &se):
		return failed(fmt.Sprintf("%s: the API answered HTTP %d %s", what, se.Response.Status, se.Response.Body),
			map[string]any{"status": se.Response.Status})
	case errors.Is(err, ErrUnreachable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return errored(fmt.Sprintf("%s: %v", what, err), nil)
	default:
		return failed(fmt.Sprintf("%s: %v", what, err), nil)
	}
}

// needSession guards the probes that use the login's session.
func needSession(t Target) (Session, *Result) {
	if t.Session == nil || t.Session.Access.IsEmpty() {
		r := skipped("no session: login did not pass")
		return Session{}, &r
	}
	return *t.Session, nil
}
