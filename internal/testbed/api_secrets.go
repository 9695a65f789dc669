package testbed

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// functionConfigReader is the one Lambda method the API's secret source
// calls.
type functionConfigReader interface {
	GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
}

// secretGetter is where the reference backend reads its secrets: the
// function's environment (secretSource) or, with Options.RuntimeSecrets,
// the store (runtimeSecrets).
type secretGetter interface {
	get(ctx context.Context) (secretSet, error)
	history() []string
}

// secretSet is the API's view of its secrets at one moment. An empty
// secondary means none.
type secretSet struct {
	primary, secondary string
}

// secretSource reads the API's secrets from a Lambda function's environment,
// caching them for at most delay, as a Lambda reading its environment at
// cold start effectively does.
type secretSource struct {
	client                functionConfigReader
	function              string
	primaryVar, secondVar string
	delay                 time.Duration
	log                   *slog.Logger
	// served, when set, returns the environment the function's execution
	// environments serve (Front.servedConfiguration): during an update in
	// progress, the one before it.
	served func(function string) (revision string, env map[string]string)

	mu      sync.Mutex
	fetched time.Time
	current secretSet
	loaded  bool
	seen    []string // every non-empty secret ever read, oldest first
}

// get returns the secrets, re-reading them when the cache is older than the
// delay. A failed re-read keeps the last known secrets (and is logged),
// because a running process keeps the environment it has.
func (s *secretSource) get(ctx context.Context) (secretSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded && time.Since(s.fetched) < s.delay {
		return s.current, nil
	}
	set, err := s.fetch(ctx)
	if err != nil {
		if s.loaded {
			s.log.Warn("re-reading secrets failed, keeping the last ones", "function", s.function, "err", err)
			return s.current, nil
		}
		return secretSet{}, err
	}
	s.current, s.fetched, s.loaded = set, time.Now(), true
	for _, v := range []string{set.primary, set.secondary} {
		if v != "" && !slices.Contains(s.seen, v) {
			s.seen = append(s.seen, v)
		}
	}
	return set, nil
}

// fetch reads the function's configuration. While an update of it is in
// progress (LastUpdateStatus InProgress, which Front reports only with
// Options.UpdateDuration) the configuration shows the new environment, but
// on AWS the execution environments of the previous one serve until the
// update completes: the secrets are then those of the environment served.
func (s *secretSource) fetch(ctx context.Context) (secretSet, error) {
	out, err := s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(s.function)})
	if err != nil {
		return secretSet{}, fmt.Errorf("reading secrets from %s: %w", s.function, err)
	}
	var vars map[string]string
	if out.Environment != nil {
		vars = out.Environment.Variables
	}
	if out.LastUpdateStatus == lambdatypes.LastUpdateStatusInProgress && s.served != nil {
		if _, env := s.served(s.function); env != nil {
			vars = env
		}
	}
	set := secretSet{primary: vars[s.primaryVar]}
	if s.secondVar != "" {
		set.secondary = vars[s.secondVar]
	}
	return set, nil
}

// history returns every secret ever read, oldest first.
func (s *secretSource) history() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}
