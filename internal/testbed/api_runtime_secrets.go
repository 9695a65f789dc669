package testbed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// RuntimeSecrets makes the Valine API read its secrets from a store at run
// time instead of from its function's environment: the runbook's path for
// an environment near Lambda's 4 KB limit, the AWS Parameters and Secrets
// Lambda Extension, which caches what it reads for a while in each
// execution environment. See Options.RuntimeSecrets.
type RuntimeSecrets struct {
	// Source is where the primary secret is read: "ssm:/name" (an SSM
	// parameter, read WithDecryption) or "secretsmanager:name" (a Secrets
	// Manager secret's AWSCURRENT SecretString; "secretsmanager:name:STAGE"
	// reads STAGE, AWSCURRENT or AWSPREVIOUS, instead). Required.
	Source string
	// SecondarySource is where the secondary secret is read, in the same
	// forms ("ssm:/name-secondary", "secretsmanager:name:AWSPREVIOUS"), or
	// "" for none. A secondary that is not there (no such parameter, no
	// version in that stage) means no secondary, not an error.
	SecondarySource string
	// CacheTTL is how long a value read from the store is served from the
	// cache before it is read again: default 5 minutes, the extension's;
	// negative reads the store on every request (the extension's TTL 0). A
	// failed read is not cached. API.SetCacheTTL changes it.
	CacheTTL time.Duration
}

// defaultCacheTTL is the Parameters and Secrets Lambda Extension's default
// cache lifetime.
const defaultCacheTTL = 5 * time.Minute

// Kinds of secretRef.
const (
	refLiteral        = ""               // a value in the template itself (serverless's ${env:…})
	refSSM            = "ssm"            // an SSM parameter
	refSecretsManager = "secretsmanager" // a Secrets Manager secret, in a version stage
	refParam          = "param"          // a CloudFormation template parameter
)

// Secrets Manager version stages a reference may name.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
)

// secretRef is a parsed source of a secret: "ssm:NAME",
// "secretsmanager:NAME[:STAGE]", "param:NAME" or "" (a literal).
type secretRef struct {
	kind  string
	name  string
	stage string // secretsmanager only; "" = AWSCURRENT
}

// cfnLogicalName is what CloudFormation accepts as a parameter name.
var cfnLogicalName = regexp.MustCompile(`^[A-Za-z0-9]{1,255}$`)

// parseSecretRef parses a source, accepting only the kinds given.
func parseSecretRef(s string, kinds ...string) (secretRef, error) {
	kind, rest, _ := strings.Cut(s, ":")
	if s == "" {
		kind = refLiteral
	}
	if !slices.Contains(kinds, kind) {
		var want []string
		for _, k := range kinds {
			if k == refLiteral {
				k = `"" (`
				if slices.Contains(kinds, refParam) {
					k += "a literal)"
				} else {
					k += "none)"
				}
			} else {
				k += ":…"
			}
			want = append(want, k)
		}
		return secretRef{}, fmt.Errorf("source %q: want one of %s", s, strings.Join(want, ", "))
	}
	ref := secretRef{kind: kind, name: rest}
	switch kind {
	case refLiteral:
		return ref, nil
	case refSecretsManager:
		// Secret names have no colon, so a second one starts the stage.
		if name, stage, ok := strings.Cut(rest, ":"); ok {
			if stage != stageCurrent && stage != stagePrevious {
				return secretRef{}, fmt.Errorf("source %q: version stage %q, want %s or %s", s, stage, stageCurrent, stagePrevious)
			}
			ref.name, ref.stage = name, stage
		}
	case refParam:
		if !cfnLogicalName.MatchString(rest) {
			return secretRef{}, fmt.Errorf("source %q: a template parameter name is 1 to 255 letters and digits", s)
		}
	}
	if ref.name == "" {
		return secretRef{}, fmt.Errorf("source %q names nothing", s)
	}
	return ref, nil
}

// String is the source as it was written.
func (r secretRef) String() string {
	switch {
	case r.kind == refLiteral:
		return "literal"
	case r.stage != "":
		return r.kind + ":" + r.name + ":" + r.stage
	}
	return r.kind + ":" + r.name
}

// isStore reports whether the reference names a store entry.
func (r secretRef) isStore() bool { return r.kind == refSSM || r.kind == refSecretsManager }

// errNotThere means a store reference resolves to nothing: no such
// parameter or secret, or no version in the stage named.
var errNotThere = errors.New("no such parameter, secret or version stage")

// storeClients reads the secret stores, SSM Parameter Store and Secrets
// Manager.
type storeClients struct {
	ssm *ssm.Client
	sm  *secretsmanager.Client
}

// newStoreClients builds the store clients on cfg.
func newStoreClients(cfg aws.Config) storeClients {
	return storeClients{ssm: ssm.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg)}
}

// read returns the value a store reference names now: an SSM parameter's
// latest version, decrypted, or a Secrets Manager secret's SecretString in
// the stage named (AWSCURRENT by default). A reference that resolves to
// nothing is errNotThere. secureOnly refuses an SSM parameter that is not a
// SecureString, as a {{resolve:ssm-secure:…}} reference does.
func (c storeClients) read(ctx context.Context, ref secretRef, secureOnly bool) (string, error) {
	switch ref.kind {
	case refSSM:
		out, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(ref.name), WithDecryption: aws.Bool(true)})
		var nf *ssmtypes.ParameterNotFound
		switch {
		case errors.As(err, &nf):
			return "", fmt.Errorf("reading %s: %w", ref, errNotThere)
		case err != nil:
			return "", fmt.Errorf("reading %s: %w", ref, err)
		case out.Parameter == nil:
			return "", fmt.Errorf("reading %s: %w", ref, errNotThere)
		case secureOnly && out.Parameter.Type != ssmtypes.ParameterTypeSecureString:
			return "", fmt.Errorf("reading %s: the parameter is a %s, not a SecureString", ref, out.Parameter.Type)
		}
		return aws.ToString(out.Parameter.Value), nil
	case refSecretsManager:
		stage := ref.stage
		if stage == "" {
			stage = stageCurrent
		}
		out, err := c.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(ref.name), VersionStage: aws.String(stage)})
		var nf *smtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			return "", fmt.Errorf("reading %s: %w", ref, errNotThere)
		case err != nil:
			return "", fmt.Errorf("reading %s: %w", ref, err)
		case out.SecretString == nil:
			return "", fmt.Errorf("reading %s: the secret holds no SecretString", ref)
		}
		return aws.ToString(out.SecretString), nil
	}
	return "", fmt.Errorf("reading %s: not a store reference", ref)
}

// runtimeSecrets is the API's secret source under Options.RuntimeSecrets:
// the store read through a cache, as the Parameters and Secrets Lambda
// Extension serves it, one cache for the API (the extension keeps one per
// execution environment). Its reads go through the API's own clients, so
// they are not the client's calls (FromTestbedAPI).
type runtimeSecrets struct {
	store              storeClients
	primary, secondary secretRef // secondary.kind refLiteral = none
	log                *slog.Logger

	mu    sync.Mutex
	ttl   time.Duration
	cache map[secretRef]cachedValue
	seen  []string // every non-empty secret ever read, oldest first
}

// cachedValue is one value the cache holds and when it was read.
type cachedValue struct {
	value string
	at    time.Time
}

// newRuntimeSecrets builds the runtime source of o on cfg.
func newRuntimeSecrets(o *RuntimeSecrets, cfg aws.Config, log *slog.Logger) (*runtimeSecrets, error) {
	primary, err := parseSecretRef(o.Source, refSSM, refSecretsManager)
	if err != nil {
		return nil, fmt.Errorf("RuntimeSecrets.Source: %w", err)
	}
	secondary, err := parseSecretRef(o.SecondarySource, refSSM, refSecretsManager, refLiteral)
	if err != nil {
		return nil, fmt.Errorf("RuntimeSecrets.SecondarySource: %w", err)
	}
	return &runtimeSecrets{
		store: newStoreClients(cfg), primary: primary, secondary: secondary, log: log,
		ttl: o.CacheTTL, cache: map[secretRef]cachedValue{},
	}, nil
}

// get returns the secrets, each from the cache while it is younger than the
// TTL and else from the store. A primary that cannot be read is an error
// (the handler's call to the extension fails); a secondary that is not
// there is none; any other failure to read it is an error too.
func (s *runtimeSecrets) get(ctx context.Context) (secretSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	primary, err := s.readLocked(ctx, s.primary)
	if err != nil {
		return secretSet{}, err
	}
	set := secretSet{primary: primary}
	if s.secondary.kind != refLiteral {
		set.secondary, err = s.readLocked(ctx, s.secondary)
		if errors.Is(err, errNotThere) {
			set.secondary, err = "", nil
		}
		if err != nil {
			return secretSet{}, err
		}
	}
	for _, v := range []string{set.primary, set.secondary} {
		if v != "" && !slices.Contains(s.seen, v) {
			s.seen = append(s.seen, v)
		}
	}
	return set, nil
}

// readLocked returns ref's value from the cache or the store. A failed
// read, a value not there included, is not cached: the next request reads
// the store again.
func (s *runtimeSecrets) readLocked(ctx context.Context, ref secretRef) (string, error) {
	if c, ok := s.cache[ref]; ok && time.Since(c.at) < s.ttl {
		return c.value, nil
	}
	delete(s.cache, ref)
	v, err := s.store.read(ctx, ref, false)
	if err != nil {
		if !errors.Is(err, errNotThere) {
			s.log.Warn("reading a runtime secret failed", "source", ref.String(), "err", err)
		}
		return "", err
	}
	s.cache[ref] = cachedValue{value: v, at: time.Now()}
	return v, nil
}

// history returns every secret ever read, oldest first.
func (s *runtimeSecrets) history() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// setTTL changes the cache lifetime; values already cached expire by it.
func (s *runtimeSecrets) setTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = d
}

// SetCacheTTL changes how long the API serves a secret it read from the
// store (Options.RuntimeSecrets) before it reads it again; values already
// cached expire by the new lifetime. Negative reads the store on every
// request. Without Options.RuntimeSecrets it does nothing.
func (a *API) SetCacheTTL(d time.Duration) {
	if a.runtime != nil {
		a.runtime.setTTL(d)
	}
}

// valineStoreEnv is env serving with the secret the valine backend reads
// from the store now (Options.RuntimeSecrets) instead of the one its module
// would have loaded from the environment. A secret it cannot read, or one
// under 32 characters, fails the request as a module failing at load does
// (500 and an ERROR line naming the variable or the source, never a value).
// The secondary is never read: the real backend verifies with one secret.
func (a *API) valineStoreEnv(ctx context.Context, env *valineEnv) *valineEnv {
	out := &valineEnv{revision: env.revision, limiter: env.limiter}
	set, err := a.runtime.get(ctx)
	switch {
	case err != nil:
		out.broken = true
		out.failure = "reading " + a.valine.secretVar + " from " + a.runtime.primary.String() + " failed"
		a.log.Warn("valine backend could not read its secret", "source", a.runtime.primary.String(), "err", err)
	case len(set.primary) < valineMinSecret:
		out.broken = true
	default:
		out.secret = set.primary
	}
	return out
}
