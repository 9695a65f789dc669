package testbed

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// valineMinSecret is the shortest JWT_SECRET the real module accepts at load.
const valineMinSecret = 32

// Login rate limit of the real backend: in memory, per execution
// environment and source IP.
const (
	valineLoginLimit  = 100
	valineLoginWindow = time.Hour
)

// valineEnv is one execution environment of the valine backend: what its
// module read when it loaded, and its in-memory state.
type valineEnv struct {
	revision string // the function's RevisionId when it loaded
	secret   string
	broken   bool   // the secret was too short: the module threw at load
	failure  string // with broken, the error's message when it is not the short secret's
	limiter  *loginLimiter
}

// valineRuntime stands for the Lambda service running the valine backend:
// it keeps one execution environment and starts a new one, which reads the
// secret variable afresh, when the function's configuration has changed.
// Unlike secretSource it does not read the configuration to notice a
// change: it compares the RevisionId the Front serves (in process, no Lambda
// call; during an update in progress, the one before it) with the one the
// environment loaded, no more often than delay, the way Lambda retires
// environments after an update completes.
type valineRuntime struct {
	client    functionConfigReader
	function  string
	secretVar string
	// fromStore means the secret is read from the store on each request
	// (Options.RuntimeSecrets, API.valineStoreEnv), not from the
	// environment at load.
	fromStore bool
	// served returns the RevisionId and environment the function's
	// execution environments serve (Front.servedConfiguration): during an
	// update in progress, the ones before it.
	served func(function string) (revision string, env map[string]string)
	delay  time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	env     *valineEnv
	checked time.Time
	seen    []string // every usable secret an environment loaded, oldest first
}

// current returns the environment serving now, starting a new one when the
// configuration changed since the last one loaded. If the new one cannot
// read its configuration the old one keeps serving (and it is retried after
// the delay); with no environment yet that is an error.
func (rt *valineRuntime) current(ctx context.Context) (*valineEnv, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.env != nil && time.Since(rt.checked) < rt.delay {
		return rt.env, nil
	}
	if rev, _ := rt.served(rt.function); rt.env != nil && rev == rt.env.revision {
		rt.checked = time.Now()
		return rt.env, nil
	}
	env, err := rt.load(ctx)
	if err != nil {
		if rt.env != nil {
			rt.log.Warn("starting a new valine environment failed, keeping the old one", "function", rt.function, "err", err)
			rt.checked = time.Now()
			return rt.env, nil
		}
		return nil, err
	}
	rt.env, rt.checked = env, time.Now()
	if !env.broken && !slices.Contains(rt.seen, env.secret) {
		rt.seen = append(rt.seen, env.secret)
	}
	return env, nil
}

// load starts an environment: it reads the function's configuration, as
// the module's top level reads process.env, and fails the module when the
// secret is too short. A configuration whose update is still in progress
// (another update began since the revision was checked) is not served yet:
// the environment loads the one served, before that update.
func (rt *valineRuntime) load(ctx context.Context) (*valineEnv, error) {
	out, err := rt.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(rt.function)})
	if err != nil {
		return nil, fmt.Errorf("reading the configuration of %s: %w", rt.function, err)
	}
	var secret string
	if out.Environment != nil {
		secret = out.Environment.Variables[rt.secretVar]
	}
	rev := aws.ToString(out.RevisionId)
	if out.LastUpdateStatus == lambdatypes.LastUpdateStatusInProgress {
		if served, env := rt.served(rt.function); env != nil {
			rev, secret = served, env[rt.secretVar]
		}
	}
	env := &valineEnv{revision: rev, limiter: &loginLimiter{hits: map[string][]time.Time{}}}
	switch {
	case rt.fromStore:
	case len(secret) < valineMinSecret:
		env.broken = true
		rt.log.Error("valine module failed to load: the secret variable is too short", "function", rt.function, "variable", rt.secretVar, "min", valineMinSecret)
	default:
		env.secret = secret
	}
	return env, nil
}

// history returns every usable secret an environment has loaded, oldest
// first (for AcceptOldTokens).
func (rt *valineRuntime) history() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.Clone(rt.seen)
}

// loginLimiter counts login attempts per source IP over a sliding window.
type loginLimiter struct {
	mu   sync.Mutex
	hits map[string][]time.Time
}

// allow records an attempt from ip at now unless ip already made
// valineLoginLimit attempts within the window, in which case it is refused
// (and not recorded).
func (l *loginLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := now.Add(-valineLoginWindow)
	hits := slices.DeleteFunc(l.hits[ip], func(t time.Time) bool { return !t.After(cut) })
	if len(hits) >= valineLoginLimit {
		l.hits[ip] = hits
		return false
	}
	l.hits[ip] = append(hits, now)
	return true
}

// sourceIP is the request's client address without the port, as API
// Gateway's requestContext.http.sourceIp.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
