package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sync/errgroup"

	"github.com/valine/valine-check/internal/profile"
)

// DeployOptions makes the World's functions a stack-managed fleet, as the
// real Valine stack is (a Serverless Framework stack whose template gives
// every function its JWT_SECRET, so the next deploy writes whatever it reads
// onto all of them). See Options.Deploy and World.Redeploy.
type DeployOptions struct {
	// StackName is the CloudFormation stack's name; default a unique
	// "valine-tb-stack-<random hex>". A given name is used as it is:
	// kumo's storage is process-wide, so make it unique.
	StackName string
	// Source is what the template puts in Profile.SecretVar:
	//   - "ssm:/name": the dynamic reference {{resolve:ssm-secure:/name}},
	//     resolved at each deploy to the SecureString parameter's latest
	//     value;
	//   - "secretsmanager:name": {{resolve:secretsmanager:name:SecretString}},
	//     the secret's AWSCURRENT value ("secretsmanager:name:AWSPREVIOUS"
	//     names the stage: {{resolve:secretsmanager:name:SecretString::AWSPREVIOUS}});
	//   - "param:Name": a template parameter, {"Ref":"Name"} (a NoEcho
	//     String) whose value each deploy passes from its environment;
	//   - "" (the default): a literal, the deploy environment's value
	//     written into the template itself, as serverless resolves
	//     ${env:JWT_SECRET} before it uploads the template.
	// The deploy environment's value is set with World.SetDeployEnv
	// (default InitialSecret). The World creates the parameter or secret
	// named, holding InitialSecret; Start fails if it already exists.
	Source string
	// SecondarySource is the same for Profile.SecondaryVar, and needs a
	// profile that has one: "ssm:/name-secondary",
	// "secretsmanager:name:AWSPREVIOUS", or "" for no secondary variable in
	// the template. As a deploy fails on a reference that resolves to
	// nothing, the World makes it resolve at start: it creates the SSM
	// parameter holding InitialSecret, and for a Secrets Manager stage
	// AWSPREVIOUS writes InitialSecret a second time, so that AWSPREVIOUS
	// exists and holds it (a secondary equal to the primary verifies
	// nothing more).
	SecondarySource string
}

// DeployResult is what World.Redeploy did. It carries names only, never a
// value.
type DeployResult struct {
	// StackName and StackID name the stack that was updated.
	StackName, StackID string
	// Written lists the functions whose environment the deploy changed, in
	// World.Functions order.
	Written []string
	// Unchanged lists the functions whose environment already was the
	// template's, which the deploy left as they were (RevisionId too).
	Unchanged []string
	// Dropped names, for each written function that had any, the variables
	// it carried that the template lacks, which the deploy removed; sorted.
	Dropped map[string][]string
}

// ErrNotStackManaged is returned by World.Redeploy for a World started
// without Options.Deploy.
var ErrNotStackManaged = errors.New("the functions are not deployed from a stack (Options.Deploy is nil)")

// stackNameRE is what CloudFormation accepts as a stack name.
var stackNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)

// deployDefaults copies d, fills its StackName and checks its sources
// against the profile.
func deployDefaults(d *DeployOptions, p profile.Profile) (*DeployOptions, error) {
	if d == nil {
		return nil, nil
	}
	do := *d
	if do.StackName == "" {
		do.StackName = "valine-tb-stack-" + randomHex(6)
	}
	if !stackNameRE.MatchString(do.StackName) {
		return nil, fmt.Errorf("Deploy.StackName %q: a stack name is a letter, then up to 127 letters, digits and hyphens", do.StackName)
	}
	if _, err := parseSecretRef(do.Source, refSSM, refSecretsManager, refParam, refLiteral); err != nil {
		return nil, fmt.Errorf("Deploy.Source: %w", err)
	}
	if _, err := parseSecretRef(do.SecondarySource, refSSM, refSecretsManager, refLiteral); err != nil {
		return nil, fmt.Errorf("Deploy.SecondarySource: %w", err)
	}
	if do.SecondarySource != "" && p.SecondaryVar == "" {
		return nil, fmt.Errorf("Deploy.SecondarySource: profile %s names no secondary variable", p.Name)
	}
	return &do, nil
}

// deployState is the World's stack: its references, the deploy
// environment and the deploys so far.
type deployState struct {
	name, id           string
	primary, secondary secretRef         // secondary.kind refLiteral = none
	logicalIDs         map[string]string // function -> logical id

	mu      sync.Mutex // one deploy at a time, as CloudFormation allows
	deploys int        // guarded by mu

	envMu     sync.Mutex
	deployEnv string // the deploy environment's value of the secret variable
}

// stackTag* are the tags CloudFormation puts on every resource it creates.
const (
	stackTagName      = "aws:cloudformation:stack-name"
	stackTagLogicalID = "aws:cloudformation:logical-id"
	stackTagID        = "aws:cloudformation:stack-id"
)

// deployBucket is where the template says the code lies; kumo never looks.
const deployBucket = "valine-tb-deployments"

// deployConcurrency bounds the functions one deploy updates at once, as
// CloudFormation updates independent resources side by side.
const deployConcurrency = 8

// newDeployState parses the references of o.Deploy.
func newDeployState(o Options) *deployState {
	primary, _ := parseSecretRef(o.Deploy.Source, refSSM, refSecretsManager, refParam, refLiteral)
	secondary, _ := parseSecretRef(o.Deploy.SecondarySource, refSSM, refSecretsManager, refLiteral)
	d := &deployState{
		name: o.Deploy.StackName, primary: primary, secondary: secondary,
		logicalIDs: map[string]string{}, deployEnv: o.InitialSecret,
	}
	used := map[string]bool{}
	for _, fn := range o.Functions {
		id := logicalID(fn)
		for n := 2; used[id]; n++ {
			id = fmt.Sprintf("%s%d", logicalID(fn), n)
		}
		used[id] = true
		d.logicalIDs[fn] = id
	}
	return d
}

// deployEnvValue is the deploy environment's value, checked the way
// serverless checks ${env:…}: a template that needs it fails without it.
func (w *World) deployEnvValue() (string, error) {
	d := w.deploy
	d.envMu.Lock()
	v := d.deployEnv
	d.envMu.Unlock()
	if v == "" && (d.primary.kind == refParam || d.primary.kind == refLiteral) {
		return "", fmt.Errorf("the deploy environment has no %s: cannot resolve ${env:%s}", w.Profile.SecretVar, w.Profile.SecretVar)
	}
	return v, nil
}

// SetDeployEnv sets the deploy environment's value of the secret variable
// (the CI secret serverless reads as ${env:JWT_SECRET}): what the next
// Redeploy writes with a literal source, or passes as the template parameter
// with a "param:" source; the store sources ignore it. The default is
// InitialSecret; "" unsets it, and the next Redeploy that needs it fails.
// Without Options.Deploy it does nothing.
func (w *World) SetDeployEnv(secret string) {
	if w.deploy == nil {
		return
	}
	w.deploy.envMu.Lock()
	defer w.deploy.envMu.Unlock()
	w.deploy.deployEnv = secret
}

// createStack creates the World's stack (after its store entries) and
// returns the environment and tags each function gets, as CloudFormation
// creates them.
func (w *World) createStack(ctx context.Context) (envs, tags map[string]map[string]string, err error) {
	d := w.deploy
	deployEnv, err := w.deployEnvValue()
	if err != nil {
		return nil, nil, fmt.Errorf("creating stack %s: %w", d.name, err)
	}
	d.deploys = 1
	doc := w.template(deployEnv, d.deploys)
	params := w.stackParams(deployEnv)
	if envs, err = w.resolve(ctx, doc, params); err != nil {
		return nil, nil, fmt.Errorf("creating stack %s: %w", d.name, err)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("creating stack %s: %w", d.name, err)
	}
	out, err := w.cfn.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName: aws.String(d.name), TemplateBody: aws.String(string(body)), Parameters: params,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating stack %s: %w", d.name, err)
	}
	d.id = aws.ToString(out.StackId)
	w.StackName, w.StackID = d.name, d.id
	tags = map[string]map[string]string{}
	for _, fn := range w.Functions {
		t := maps.Clone(w.opts.FunctionTags)
		if t == nil {
			t = map[string]string{}
		}
		t[stackTagName], t[stackTagLogicalID], t[stackTagID] = d.name, d.logicalIDs[fn], d.id
		tags[fn] = t
	}
	return envs, tags, nil
}

// Redeploy does to the functions what the next `serverless deploy` (or
// `sam deploy`) does: it builds the template again (with a new code key, so
// every function is updated), resolves its variables the way CloudFormation
// does at deploy time (see DeployOptions.Source; SetDeployEnv for the
// deploy environment's value), updates the stack with UpdateStack (its
// LastUpdatedTime moves) and writes each function's whole environment as
// the template defines it: a variable the template lacks is dropped, one
// changed by hand is reverted. Writes go through the emulator's Lambda API
// with the World's own client, read-modify-write with the RevisionId read
// and the FunctionUpdatedV2 waiter as SetSecrets does, spared by the Lambda
// quotas, several functions at once; a function already as the template
// says is not written. A reference that resolves to nothing (a parameter
// deleted, a stage absent, a deploy environment without the variable) or
// an UpdateStack refused fails the deploy before any function changes, as
// a failed CloudFormation deploy rolls back; an error while writing names
// the function, and the result lists the functions written all the same. Without
// Options.Deploy it returns ErrNotStackManaged. One Redeploy runs at a
// time.
func (w *World) Redeploy(ctx context.Context) (DeployResult, error) {
	d := w.deploy
	if d == nil {
		return DeployResult{}, fmt.Errorf("redeploying: %w", ErrNotStackManaged)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	res := DeployResult{StackName: d.name, StackID: d.id, Dropped: map[string][]string{}}
	deployEnv, err := w.deployEnvValue()
	if err != nil {
		return res, fmt.Errorf("redeploying stack %s: %w", d.name, err)
	}
	doc := w.template(deployEnv, d.deploys+1)
	params := w.stackParams(deployEnv)
	envs, err := w.resolve(ctx, doc, params)
	if err != nil {
		return res, fmt.Errorf("redeploying stack %s: %w", d.name, err)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return res, fmt.Errorf("redeploying stack %s: %w", d.name, err)
	}
	if _, err := w.cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{
		StackName: aws.String(d.name), TemplateBody: aws.String(string(body)), Parameters: params,
	}); err != nil {
		return res, fmt.Errorf("redeploying stack %s: %w", d.name, err)
	}
	d.deploys++

	type outcome struct {
		written bool
		dropped []string
		err     error
	}
	outs := make([]outcome, len(w.Functions))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deployConcurrency)
	for i, fn := range w.Functions {
		g.Go(func() error {
			want := envs[fn]
			o := &outs[i]
			o.err = w.writeEnv(gctx, fn, func(env map[string]string) {
				o.written = !maps.Equal(env, want)
				o.dropped = nil
				for k := range env {
					if _, ok := want[k]; !ok {
						o.dropped = append(o.dropped, k)
					}
				}
				clear(env)
				maps.Copy(env, want)
			})
			return o.err
		})
	}
	_ = g.Wait()
	var errs []error
	for i, fn := range w.Functions {
		o := outs[i]
		switch {
		case o.err != nil:
			errs = append(errs, fmt.Errorf("writing the environment of %s: %w", fn, o.err))
		case o.written:
			res.Written = append(res.Written, fn)
			if len(o.dropped) > 0 {
				slices.Sort(o.dropped)
				res.Dropped[fn] = o.dropped
			}
		default:
			res.Unchanged = append(res.Unchanged, fn)
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("redeploying stack %s: %w", d.name, errors.Join(errs...))
	}
	return res, nil
}

// storeEntry is a parameter or secret the World created, to delete at
// Close.
type storeEntry struct {
	kind, name string
}

// createStoreEntries creates the store entries Options.Deploy and
// Options.RuntimeSecrets reference, each once, holding InitialSecret: the
// deploy's primary and secondary (a Secrets Manager AWSPREVIOUS written
// twice so the stage exists), and the runtime primary unless the deploy
// made it. An entry that exists already is an error.
func (w *World) createStoreEntries(ctx context.Context) error {
	var refs []secretRef
	if w.deploy != nil {
		refs = append(refs, w.deploy.primary, w.deploy.secondary)
	}
	if rs := w.opts.RuntimeSecrets; rs != nil {
		r, _ := parseSecretRef(rs.Source, refSSM, refSecretsManager)
		refs = append(refs, r)
	}
	made := map[storeEntry]bool{}
	staged := false
	for _, ref := range refs {
		if !ref.isStore() {
			continue
		}
		e := storeEntry{ref.kind, ref.name}
		if !made[e] {
			if err := w.createStoreEntry(ctx, e); err != nil {
				return err
			}
			made[e] = true
			w.created = append(w.created, e)
		}
		if w.deploy != nil && ref == w.deploy.secondary && ref.stage == stagePrevious && !staged {
			staged = true
			// A second version, so that AWSPREVIOUS exists.
			if _, err := w.stores.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
				SecretId: aws.String(ref.name), SecretString: aws.String(w.opts.InitialSecret),
			}); err != nil {
				return fmt.Errorf("staging AWSPREVIOUS of secret %s: %w", ref.name, err)
			}
		}
	}
	return nil
}

// createStoreEntry creates one SSM SecureString parameter or Secrets
// Manager secret holding InitialSecret.
func (w *World) createStoreEntry(ctx context.Context, e storeEntry) error {
	if e.kind == refSSM {
		if _, err := w.stores.ssm.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(e.name), Value: aws.String(w.opts.InitialSecret), Type: ssmtypes.ParameterTypeSecureString,
			Description: aws.String("Valine JWT signing secret (testbed)"),
		}); err != nil {
			return fmt.Errorf("creating SSM parameter %s: %w", e.name, err)
		}
		return nil
	}
	if _, err := w.stores.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(e.name), SecretString: aws.String(w.opts.InitialSecret),
		Description: aws.String("Valine JWT signing secret (testbed)"),
	}); err != nil {
		return fmt.Errorf("creating secret %s: %w", e.name, err)
	}
	return nil
}

// closeStack deletes the stack and the store entries the World created,
// ignoring errors (a test may have deleted them already).
func (w *World) closeStack(ctx context.Context) {
	if w.deploy != nil && w.deploy.id != "" {
		_, _ = w.cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(w.deploy.name)})
	}
	for _, e := range w.created {
		if e.kind == refSSM {
			_, _ = w.stores.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(e.name)})
		} else {
			_, _ = w.stores.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(e.name), ForceDeleteWithoutRecovery: aws.Bool(true)})
		}
	}
}
