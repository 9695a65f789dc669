package rotate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"golang.org/x/sync/errgroup"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

// FleetAPI is the Lambda calls fleet selection and inspection make, with the
// SDK's exact signatures, so the real client and a small fake both satisfy
// it. Functions are read with GetFunction, whose quota (100 a second) is
// not the control plane's (15): its answer carries the configuration, the
// environment, the RevisionId and the tags.
type FleetAPI interface {
	ListFunctions(ctx context.Context, in *lambda.ListFunctionsInput, optFns ...func(*lambda.Options)) (*lambda.ListFunctionsOutput, error)
	GetFunction(ctx context.Context, in *lambda.GetFunctionInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
}

// readConcurrency bounds the per-function reads of ResolveFleet, and of
// Inspect when its caller gives no bound. The reads are paced by
// PacedLambda where the caller uses one; this only bounds the goroutines.
const readConcurrency = 16

// FunctionState is what Inspect read of one function. The secrets are held
// as probes.Secret, which prints as a fingerprint; no other variable's value
// is kept.
type FunctionState struct {
	Name string
	// ARN is the function's ARN (tags are written by it).
	ARN string
	// Owner is the function's OwnerTag: the backup secret that owns it
	// ("" when untagged).
	Owner string
	// Stack and LogicalID are the CloudFormation stack that deploys the
	// function and its resource in the template (the tags
	// aws:cloudformation:stack-name and :logical-id; "" when not
	// stack-managed).
	Stack, LogicalID string
	// Primary and Secondary are the values of the profile's secret
	// variables (empty when absent).
	Primary, Secondary secret.Secret
	// HasPrimaryVar and HasSecondaryVar say the variables are present, even
	// if empty.
	HasPrimaryVar, HasSecondaryVar bool
	// RevisionID, LastModified, LastUpdateStatus and State are Lambda's.
	RevisionID, LastModified, LastUpdateStatus, State string
	// EnvBytes is the JSON size of the environment, the measure MaxEnvBytes limits.
	EnvBytes int
	// OtherVars counts the variables other than the profile's secret variables.
	OtherVars int
}

// FleetState is a fleet as Inspect read it, in fleet order.
type FleetState struct {
	Functions []FunctionState
}

// Inspect reads every function of fleet (GetFunction, at most concurrency
// at once; 0 means 16) and returns their states in fleet order. A function
// whose environment Lambda cannot decrypt is an error: treating it as "no
// secret" would invite writing over it.
func Inspect(ctx context.Context, api FleetAPI, fleet []string, p profile.Profile, concurrency int) (FleetState, error) {
	fs, _, err := inspect(ctx, api, fleet, p, concurrency, nil)
	return fs, err
}

// inspect is Inspect, also returning each function's whole configuration
// as read, for the writes that follow. A function in read is taken from
// there instead of being read again.
func inspect(ctx context.Context, api FleetAPI, fleet []string, p profile.Profile, concurrency int, read FleetRead) (FleetState, []FunctionConfig, error) {
	if concurrency <= 0 {
		concurrency = readConcurrency
	}
	states := make([]FunctionState, len(fleet))
	configs := make([]FunctionConfig, len(fleet))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, fn := range fleet {
		g.Go(func() error {
			out, ok := read[fn]
			if !ok {
				var err error
				if out, err = api.GetFunction(gctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}); err != nil {
					return fmt.Errorf("inspecting %s: %w", fn, err)
				}
			}
			if out.Configuration == nil {
				return fmt.Errorf("inspecting %s: GetFunction returned no configuration", fn)
			}
			st, err := functionState(fn, out.Configuration, p)
			if err != nil {
				return err
			}
			st.Owner = out.Tags[OwnerTag]
			st.Stack, st.LogicalID = out.Tags[StackNameTag], out.Tags[LogicalIDTag]
			states[i] = st
			configs[i] = configOf(out.Configuration)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return FleetState{}, nil, err
	}
	return FleetState{Functions: states}, configs, nil
}

// functionState reduces a configuration to what the fleet needs.
func functionState(fn string, cfg *types.FunctionConfiguration, p profile.Profile) (FunctionState, error) {
	env := map[string]string{}
	if e := cfg.Environment; e != nil {
		if e.Error != nil {
			// Lambda's error code and message name the KMS problem, never a value.
			return FunctionState{Name: fn}, fmt.Errorf("inspecting %s: environment unreadable: %s: %s", fn, aws.ToString(e.Error.ErrorCode), aws.ToString(e.Error.Message))
		}
		env = e.Variables
	}
	st, err := stateOfEnv(fn, env, p)
	st.ARN = aws.ToString(cfg.FunctionArn)
	st.RevisionID = aws.ToString(cfg.RevisionId)
	st.LastModified = aws.ToString(cfg.LastModified)
	st.LastUpdateStatus = string(cfg.LastUpdateStatus)
	st.State = string(cfg.State)
	return st, err
}

// stateOfEnv is what the fleet needs of one function's environment.
func stateOfEnv(fn string, env map[string]string, p profile.Profile) (FunctionState, error) {
	st := FunctionState{Name: fn}
	var v string
	v, st.HasPrimaryVar = env[p.SecretVar]
	st.Primary = secret.NewSecret(v)
	if p.SecondaryVar != "" {
		v, st.HasSecondaryVar = env[p.SecondaryVar]
		st.Secondary = secret.NewSecret(v)
	}
	st.OtherVars = len(env) - boolCount(st.HasPrimaryVar, st.HasSecondaryVar)
	size, err := envSize(env)
	if err != nil {
		return st, fmt.Errorf("inspecting %s: %w", fn, err)
	}
	st.EnvBytes = size
	return st, nil
}

func boolCount(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// DriftGroup is a set of functions holding the same secrets, shown by
// fingerprint ("empty" for none).
type DriftGroup struct {
	Primary, Secondary string
	Functions          []string
}

// Drift is the fleet's verdict: Consistent when every function holds the
// same primary and secondary (an empty fleet is trivially consistent).
// Groups are sorted by size, largest first, then by fingerprint.
type Drift struct {
	Consistent bool
	Groups     []DriftGroup
}

// Drift groups the functions by the secrets they hold. Functions are
// compared by value, not by fingerprint, so two secrets sharing a
// fingerprint still count as drift.
func (f FleetState) Drift() Drift {
	type key struct{ primary, secondary string }
	index := map[key]int{}
	var groups []DriftGroup
	for _, fn := range f.Functions {
		k := key{string(fn.Primary.Reveal()), string(fn.Secondary.Reveal())}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, DriftGroup{Primary: fn.Primary.Fingerprint(), Secondary: fn.Secondary.Fingerprint()})
		}
		groups[i].Functions = append(groups[i].Functions, fn.Name)
	}
	slices.SortStableFunc(groups, func(a, b DriftGroup) int {
		if d := len(b.Functions) - len(a.Functions); d != 0 {
			return d
		}
		if c := strings.Compare(a.Primary, b.Primary); c != 0 {
			return c
		}
		return strings.Compare(a.Secondary, b.Secondary)
	})
	return Drift{Consistent: len(groups) <= 1, Groups: groups}
}

// String gives the verdict in one line, by fingerprint only: "all 3
// functions agree (primary sha256:…, no secondary)" or "DRIFT: 2 functions
// on primary sha256:… (a, b); 1 function on primary sha256:… (c)".
func (d Drift) String() string {
	switch {
	case len(d.Groups) == 0:
		return "no functions"
	case d.Consistent:
		g := d.Groups[0]
		secrets := "primary " + g.Primary + ", " + secondaryPhrase(g.Secondary)
		if len(g.Functions) == 1 {
			return "1 function (" + secrets + ")"
		}
		return fmt.Sprintf("all %d functions agree (%s)", len(g.Functions), secrets)
	}
	anySecondary := false
	for _, g := range d.Groups {
		anySecondary = anySecondary || g.Secondary != secret.Fingerprint("")
	}
	parts := make([]string, len(d.Groups))
	for i, g := range d.Groups {
		secrets := "primary " + g.Primary
		if anySecondary {
			secrets += ", " + secondaryPhrase(g.Secondary)
		}
		parts[i] = fmt.Sprintf("%s on %s (%s)", plural(len(g.Functions), "function"), secrets, strings.Join(g.Functions, ", "))
	}
	return "DRIFT: " + strings.Join(parts, "; ")
}

func secondaryPhrase(fp string) string {
	if fp == secret.Fingerprint("") {
		return "no secondary"
	}
	return "secondary " + fp
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Secrets returns the primary and secondary every function holds, and
// whether there is such a pair (the fleet is not empty and does not
// drift). A consistent fleet may still hold an empty primary: callers that
// write check IsEmpty.
func (f FleetState) Secrets() (primary, secondary secret.Secret, ok bool) {
	if len(f.Functions) == 0 || !f.Drift().Consistent {
		return secret.Secret{}, secret.Secret{}, false
	}
	return f.Functions[0].Primary, f.Functions[0].Secondary, true
}

// Headroom returns the fewest bytes any function would have left under
// MaxEnvBytes after the largest write a rotation makes: a new primary of
// newLen bytes replacing the current one, which, withSecondary (a
// zero-downtime stage), moves to the secondary variable. Negative means
// that write would be refused with ErrEnvTooLarge. An empty fleet has
// MaxEnvBytes.
func (f FleetState) Headroom(p profile.Profile, newLen int, withSecondary bool) int {
	least := MaxEnvBytes
	for _, fn := range f.Functions {
		// Every other variable stays as it is, so the size changes only by
		// the secret variables' entries and the commas between entries.
		before := map[string]string{}
		if fn.HasPrimaryVar {
			before[p.SecretVar] = string(fn.Primary.Reveal())
		}
		if fn.HasSecondaryVar {
			before[p.SecondaryVar] = string(fn.Secondary.Reveal())
		}
		after := map[string]string{p.SecretVar: strings.Repeat("x", newLen)}
		if withSecondary && p.SecondaryVar != "" {
			after[p.SecondaryVar] = string(fn.Primary.Reveal())
		}
		size := fn.EnvBytes + entriesSize(after, fn.OtherVars) - entriesSize(before, fn.OtherVars)
		least = min(least, MaxEnvBytes-size)
	}
	return least
}

// entriesSize is what the entries of m add to the JSON of an environment
// that also holds others other variables: each `"k":"v"` and its comma.
func entriesSize(m map[string]string, others int) int {
	n := 0
	for k, v := range m {
		kb, _ := jsonNoHTML(k)
		vb, _ := jsonNoHTML(v)
		n += len(kb) + 1 + len(vb)
	}
	// n entries among n+others need n+others-1 commas; the others alone need others-1.
	total := len(m) + others
	commas := max(total-1, 0) - max(others-1, 0)
	return n + commas
}
