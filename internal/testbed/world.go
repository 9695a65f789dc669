package testbed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/sivchari/kumo"

	"github.com/valine/valine-check/internal/profile"
)

// World is a running local world: kumo behind a Front, the Lambda functions
// holding the secret, their log groups, and the Valine API. Close it when done.
type World struct {
	APIURL    string   // base URL of the Valine API (http://127.0.0.1:port)
	AWSURL    string   // base URL of the AWS front (kumo behind Front)
	Region    string   // "us-east-1"
	Functions []string // the Lambda functions sharing the secret
	Function  string   // Functions[0], whose environment the API reads
	LogGroup  string   // "/aws/lambda/"+Function, where the API logs
	// StackName and StackID name the CloudFormation stack the functions are
	// deployed from (Options.Deploy; StackID as CreateStack returned it);
	// both "" without one.
	StackName, StackID string
	Profile            profile.Profile
	// ProbeEmail and ProbePassword are the seeded user's credentials.
	ProbeEmail, ProbePassword string
	// AWS is a config for SDK clients against AWSURL: static credentials
	// "test"/"test", Region, BaseEndpoint = AWSURL, request compression
	// disabled (kumo rejects gzipped bodies).
	AWS      aws.Config
	API      *API   // controls on the running Valine API
	AWSFront *Front // controls on the AWS front handler

	opts     Options
	kumo     *kumo.Server
	frontSrv *httptest.Server
	lambda   *lambda.Client
	logs     *cloudwatchlogs.Client
	cfn      *cloudformation.Client
	stores   storeClients // the World's own SSM and Secrets Manager clients
	deploy   *deployState // Options.Deploy; nil = plain functions
	created  []storeEntry // store entries to delete at Close
}

// kumoMu serialises kumo.NewServer: each one re-wires kumo's process-global
// services, which is not safe to do concurrently.
var kumoMu sync.Mutex

// Start builds a World: a kumo server and its Front, the functions (with
// ExtraEnv and the primary secret), a log group per function, the seeded
// user and the API, listening unless opts.Misbehaviours has Down.
func Start(ctx context.Context, opts Options) (*World, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	kumoMu.Lock()
	ks := kumo.NewServer()
	kumoMu.Unlock()
	front, err := NewFront(ks.URL)
	if err != nil {
		ks.Close()
		return nil, err
	}
	front.SetUpdateDuration(opts.UpdateDuration)
	front.SetLambdaQuotas(opts.LambdaQuotas)
	fs := httptest.NewServer(front)
	w := &World{
		AWSURL:        fs.URL,
		Region:        "us-east-1",
		Functions:     opts.Functions,
		Function:      opts.Functions[0],
		LogGroup:      "/aws/lambda/" + opts.Functions[0],
		Profile:       opts.Profile,
		ProbeEmail:    opts.ProbeEmail,
		ProbePassword: opts.ProbePassword,
		AWSFront:      front,
		opts:          opts,
		kumo:          ks,
		frontSrv:      fs,
	}
	w.AWS = awsConfig(w.Region, fs.URL, "")
	own := awsConfig(w.Region, fs.URL, testbedWorldAppID) // spared by the Lambda quotas
	w.lambda = lambda.NewFromConfig(own)
	w.logs = cloudwatchlogs.NewFromConfig(own)
	w.cfn = cloudformation.NewFromConfig(own)
	w.stores = newStoreClients(own)
	if opts.Deploy != nil {
		w.deploy = newDeployState(opts)
	}
	if err := w.start(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// awsConfig returns an SDK config for the emulator at endpoint, built as a
// literal so nothing in the environment (profiles, AWS_ENDPOINT_URL…) leaks
// in. appID, when set, tags the User-Agent.
func awsConfig(region, endpoint, appID string) aws.Config {
	return aws.Config{
		Region:                    region,
		Credentials:               aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("test", "test", "")),
		BaseEndpoint:              aws.String(endpoint),
		DisableRequestCompression: true,
		AppID:                     appID,
	}
}

// start creates the store entries (Options.Deploy, Options.RuntimeSecrets),
// the stack (Options.Deploy), the functions (tagged with
// Options.FunctionTags, and with the stack's tags when there is one), log
// groups and API.
func (w *World) start(ctx context.Context) error {
	if err := w.createStoreEntries(ctx); err != nil {
		return err
	}
	env := maps.Clone(w.opts.ExtraEnv)
	env[w.Profile.SecretVar] = w.opts.InitialSecret
	envs, tags := map[string]map[string]string{}, map[string]map[string]string{}
	for _, fn := range w.Functions {
		envs[fn], tags[fn] = env, w.opts.FunctionTags
	}
	if w.deploy != nil {
		var err error
		if envs, tags, err = w.createStack(ctx); err != nil {
			return err
		}
	}
	for _, fn := range w.Functions {
		if err := createFunction(ctx, w.lambda, fn, envs[fn], tags[fn]); err != nil {
			return err
		}
		if err := createLogGroup(ctx, w.logs, "/aws/lambda/"+fn); err != nil {
			return err
		}
	}
	api, err := w.startAPI(ctx)
	if err != nil {
		return err
	}
	w.API = api
	w.APIURL = api.URL()
	return nil
}

// Close stops the API and the servers and deletes the functions, log
// groups, stack and store entries the World created from kumo's
// process-global storage. It is safe to call twice.
func (w *World) Close() {
	if w.API != nil {
		w.API.close()
	}
	if w.frontSrv != nil && w.lambda != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for _, fn := range w.Functions {
			_, _ = w.lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn)})
			_, _ = w.logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("/aws/lambda/" + fn)})
		}
		w.closeStack(ctx)
		cancel()
		w.frontSrv.Close()
		w.frontSrv = nil
	}
	if w.kumo != nil {
		w.kumo.Close()
		w.kumo = nil
	}
}

// InitialSecret returns the primary secret set at start (tests need it to
// forge tokens signed with the old secret after a rotation).
func (w *World) InitialSecret() string { return w.opts.InitialSecret }

// Env reads a function's environment and RevisionId through the Lambda API.
func (w *World) Env(ctx context.Context, function string) (map[string]string, string, error) {
	out, err := w.lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(function)})
	if err != nil {
		return nil, "", fmt.Errorf("reading the configuration of %s: %w", function, err)
	}
	env := map[string]string{}
	if out.Environment != nil {
		maps.Copy(env, out.Environment.Variables)
	}
	return env, aws.ToString(out.RevisionId), nil
}

// ErrEmptySecret is returned by SetSecrets, before any write, for an empty
// primary. A function left without a secret is a state to create on
// purpose, with EditEnv.
var ErrEmptySecret = errors.New("refusing to write an empty primary secret")

// envWriteBudget bounds the rounds an environment write may lose to another
// writer or to an update in progress, and the FunctionUpdatedV2 waiter.
const envWriteBudget = 30 * time.Second

// SetSecrets rotates every function in turn through the emulator's Lambda
// API, with the World's own client rather than the rotation code the
// testbed is there to test. For each function it reads the configuration,
// sets the profile's SecretVar to primary and its SecondaryVar to secondary
// (secondary "" removes SecondaryVar), writes the whole environment back
// with the RevisionId it read, starting again from a fresh read when another
// writer got in between, and waits with the FunctionUpdatedV2 waiter. Every
// other variable is kept byte for byte, including one another writer added
// between the read and the write. An empty primary (ErrEmptySecret) and a
// secondary for a profile that names no secondary variable are refused
// before any write. An error names the function it stopped at; the
// functions before it are already rotated.
func (w *World) SetSecrets(ctx context.Context, primary, secondary string) error {
	p := w.Profile
	switch {
	case primary == "":
		return fmt.Errorf("setting secrets: %w", ErrEmptySecret)
	case secondary != "" && p.SecondaryVar == "":
		return fmt.Errorf("setting secrets: profile %s names no secondary variable, so a grace period cannot be staged", p.Name)
	}
	for _, fn := range w.Functions {
		err := w.writeEnv(ctx, fn, func(env map[string]string) {
			env[p.SecretVar] = primary
			switch {
			case p.SecondaryVar == "":
			case secondary == "":
				delete(env, p.SecondaryVar)
			default:
				env[p.SecondaryVar] = secondary
			}
		})
		if err != nil {
			return fmt.Errorf("setting secrets of %s: %w", fn, err)
		}
	}
	return nil
}

// EditEnv changes one function's environment with no guard at all, as
// another writer (a console edit, a deploy, the runbook's script) would: tests
// use it to create the states rotation must survive, such as an empty secret
// or a variable added between a read and a write. Like SetSecrets it writes
// the whole environment back with the RevisionId it read, reading again when
// it lost a race, so it never undoes a concurrent writer's change; it checks
// nothing else, not even Lambda's 4 KB limit (which kumo does not enforce).
func (w *World) EditEnv(ctx context.Context, function string, edit func(env map[string]string)) error {
	if err := w.writeEnv(ctx, function, edit); err != nil {
		return fmt.Errorf("editing the environment of %s: %w", function, err)
	}
	return nil
}

// writeEnv applies edit to a copy of the function's environment and writes
// the whole map back, since Lambda replaces an environment wholesale, with
// the RevisionId it read. Front answers a stale RevisionId with
// PreconditionFailed: the round then starts again from a fresh read, so the
// other writer's change is kept; an update in progress (ResourceConflict) is
// waited out a little. Both give up after envWriteBudget. After the write it
// waits with the FunctionUpdatedV2 waiter. An edit that changes nothing
// writes nothing, so the RevisionId stays as it was.
func (w *World) writeEnv(ctx context.Context, function string, edit func(env map[string]string)) error {
	giveUp := time.Now().Add(envWriteBudget)
	pause := 10 * time.Millisecond
	for {
		cfg, err := w.lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(function)})
		if err != nil {
			return fmt.Errorf("reading the configuration: %w", err)
		}
		current := map[string]string{}
		if cfg.Environment != nil {
			maps.Copy(current, cfg.Environment.Variables)
		}
		next := maps.Clone(current)
		edit(next)
		if maps.Equal(current, next) {
			return nil
		}
		_, err = w.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(function),
			Environment:  &lambdatypes.Environment{Variables: next},
			RevisionId:   cfg.RevisionId,
		})
		var stale *lambdatypes.PreconditionFailedException
		var busy *lambdatypes.ResourceConflictException
		switch {
		case err == nil:
			waiter := lambda.NewFunctionUpdatedV2Waiter(w.lambda, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
				// The waiter's 1 s first delay is for AWS; poll a modelled
				// update (Options.UpdateDuration) a few times over.
				o.MinDelay = min(max(w.opts.UpdateDuration/4, 10*time.Millisecond), o.MinDelay)
			})
			if err := waiter.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(function)}, envWriteBudget); err != nil {
				return fmt.Errorf("waiting for the update to finish: %w", err)
			}
			return nil
		case !errors.As(err, &stale) && !errors.As(err, &busy):
			return fmt.Errorf("updating the configuration: %w", err)
		case time.Now().After(giveUp):
			return fmt.Errorf("updating the configuration: gave up after %s: %w", envWriteBudget, err)
		case busy != nil:
			// An update in progress: wait a little, longer each round.
			if !sleepCtx(ctx, pause) {
				return ctx.Err()
			}
			pause = min(2*pause, 500*time.Millisecond)
		}
		// Another writer got in first, or the update in progress is over:
		// read again, so the write carries what is there now.
	}
}
