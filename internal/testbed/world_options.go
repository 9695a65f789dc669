package testbed

import (
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/valine/valine-check/internal/profile"
)

// Options configures a World. Zero values give sensible defaults.
type Options struct {
	// Backend is which implementation of the Valine API the World runs:
	// BackendReference (the default) or BackendValine. BackendValine takes
	// the Profile's paths, field and cookie names and SecretVar, but its
	// transports, answers and logs are the real backend's whatever the
	// Profile says.
	Backend Backend
	// Profile is the deployment shape the API serves; default
	// probes.Presets["runbook"], or probes.Presets["valine"] with
	// BackendValine.
	Profile profile.Profile
	// Functions are the Lambda functions sharing the secret; default one
	// unique name "valine-tb-<random hex>". The API reads its secrets from
	// Functions[0] and logs to /aws/lambda/<Functions[0]>. Given names are
	// used as they are: kumo's storage is global to the process, so make
	// them unique.
	Functions []string
	// FunctionTags are set on every function when it is created, so that a
	// fleet can be chosen by tag (Lambda ListTags shows them); default none.
	FunctionTags map[string]string
	// ExtraEnv holds the other environment variables every function carries;
	// default a few realistic ones (NODE_ENV, DATABASE_URL, LOG_LEVEL,
	// CORS_ORIGIN). Given entries are added to, and override, the defaults.
	ExtraEnv map[string]string
	// InitialSecret is the primary secret set at start; default 32 random
	// bytes in base64, like `openssl rand -base64 32`. With BackendValine a
	// secret under 32 characters makes every request answer 500.
	InitialSecret string
	// ProbeEmail and ProbePassword are the one seeded user's credentials;
	// defaults "probe@valine.test" and a random password.
	ProbeEmail, ProbePassword string
	// PropagationDelay is how stale the API's view of its secrets may get:
	// it re-reads them from the function configuration no more often than
	// this (0 = on every request). With BackendValine it is how often the
	// API checks whether the function's RevisionId changed, which starts a
	// new execution environment that reads the secret. With RuntimeSecrets
	// the secrets come from the store instead, cached for
	// RuntimeSecrets.CacheTTL.
	PropagationDelay time.Duration
	// UpdateDuration is how long a Lambda update the AWS front accepts
	// (UpdateFunctionConfiguration, UpdateFunctionCode) keeps its function
	// LastUpdateStatus InProgress, refusing another update with
	// ResourceConflictException, while the API keeps serving the previous
	// environment; 0 (the default) is kumo's behaviour, Successful at once.
	// See Front.SetUpdateDuration.
	UpdateDuration time.Duration
	// LambdaQuotas, when set, makes the AWS front enforce Lambda's
	// control-plane request rates on the code under test (429
	// TooManyRequestsException over them); nil (the default) means no
	// limits. See LambdaQuotas and Front.SetLambdaQuotas.
	LambdaQuotas *LambdaQuotas
	// Latency is injected before each Valine API request is served.
	Latency time.Duration
	// AccessTTL and RefreshTTL are the token lifetimes; defaults 15m and
	// 7*24h, or 24h and 7*24h with BackendValine.
	AccessTTL, RefreshTTL time.Duration
	// Busy makes every n-th login answer 503 SERVER_BUSY (see BusyOptions
	// and API.SetBusy). nil means never with BackendReference and
	// {Every: 15, RetryAfterSeconds: 3} with BackendValine; &BusyOptions{}
	// means never with either.
	Busy *BusyOptions
	// Misbehaviours are the API's deliberate defects at start; see
	// API.SetMisbehaviours to change them later.
	Misbehaviours Misbehaviour
	// Deploy, when set, makes the functions a stack-managed fleet: the World
	// creates the store entries the template references, a CloudFormation
	// stack whose template defines every function's environment, and the
	// functions as the stack would, tagged with the stack; World.Redeploy
	// then does what the next deploy does. nil (the default): plain
	// functions, and Redeploy is an error. See DeployOptions.
	Deploy *DeployOptions
	// RuntimeSecrets, when set, makes the API read its secrets from a store
	// (SSM Parameter Store or Secrets Manager) through a cache, as the
	// Parameters and Secrets Lambda Extension serves them, instead of from
	// the function's environment; the World creates the primary's store
	// entry with InitialSecret unless Deploy already did. nil (the
	// default): the environment. See RuntimeSecrets.
	RuntimeSecrets *RuntimeSecrets
	// Logger receives the testbed's own diagnostics (never tokens or
	// secrets), such as a failed PutLogEvents; default discards.
	Logger *slog.Logger
}

// Misbehaviour is a set of deliberate defects of the Valine API, as bit flags.
// Each relaxes exactly what it names and nothing else.
type Misbehaviour uint

const (
	// AcceptOldTokens keeps accepting every secret the API has ever seen
	// after a rotation (logged as secret=accepted-old).
	AcceptOldTokens Misbehaviour = 1 << iota
	// IgnoreSecondary never reads the secondary variable.
	IgnoreSecondary
	// AcceptAlgNone accepts alg=none unsigned tokens (logged as secret=none).
	AcceptAlgNone
	// AcceptAnyHMAC accepts HS384/HS512 signed with the secret (the
	// algorithm is not pinned).
	AcceptAnyHMAC
	// RefreshFails makes the refresh endpoint return 500.
	RefreshFails
	// Down stops the API listening (connection refused); clearing it
	// listens again on the same port.
	Down
	// AcceptExpired does not check exp.
	AcceptExpired
	// AcceptRefreshAsAccess lets the profile endpoint accept a refresh token.
	AcceptRefreshAsAccess
	// SkipSignature accepts any signature, so tampered and empty-key tokens
	// pass (logged as secret=unverified).
	SkipSignature
	// AcceptNoExp accepts a token without exp (the reference backend
	// requires one); a token whose exp has passed is still refused.
	AcceptNoExp
	// RefreshIgnoresSecondary makes the refresh endpoint verify refresh
	// tokens with the primary only, so during a grace period a refresh
	// token signed with the old secret (now the secondary) is refused. The
	// profile endpoint still reads the secondary.
	RefreshIgnoresSecondary
	// RefreshSignsWithVerifier makes a successful refresh sign the new
	// tokens with the secret that verified the refresh token instead of the
	// primary, so during a grace period an old refresh token yields tokens
	// signed with the old secret.
	RefreshSignsWithVerifier
	// ServerBusy makes every request of the Valine API, whatever its path
	// and in both backends, answer 503 {"error":"SERVER_BUSY","retryAfter":1}
	// with the header Retry-After: 1, and log nothing: a backend
	// overloaded for a while.
	ServerBusy
)

var misbehaviourNames = []string{
	"AcceptOldTokens", "IgnoreSecondary", "AcceptAlgNone", "AcceptAnyHMAC", "RefreshFails",
	"Down", "AcceptExpired", "AcceptRefreshAsAccess", "SkipSignature",
	"AcceptNoExp", "RefreshIgnoresSecondary", "RefreshSignsWithVerifier", "ServerBusy",
}

// Backend names an implementation of the Valine API that a World runs.
type Backend string

const (
	// BackendReference is the testbed's reference API (the zero value): it
	// serves any Profile, verifies with a primary and an optional secondary
	// secret re-read every Options.PropagationDelay, and logs one "JWT
	// verification" line per verification.
	BackendReference Backend = ""
	// BackendValine reproduces the real Project Valine backend as observed
	// (VALINE-BACKEND.md): cookie tokens, one secret read only when a new
	// execution environment starts, jwt.verify's weaknesses, a login rate
	// limit, occasional SERVER_BUSY at login and Lambda's plain text logs
	// with no JWT lines. See the package documentation.
	BackendValine Backend = "valine"
)

// String lists the set flags, joined with "|", or "none".
func (m Misbehaviour) String() string {
	var names []string
	for i, n := range misbehaviourNames {
		if m&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if rest := m &^ (1<<len(misbehaviourNames) - 1); rest != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint(rest)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// withDefaults fills the zero fields of o and validates the profile.
func (o Options) withDefaults() (Options, error) {
	valine := o.Backend == BackendValine
	if o.Backend != BackendReference && !valine {
		return o, fmt.Errorf("testbed options: unknown backend %q (known: %q, %q)", o.Backend, BackendReference, BackendValine)
	}
	if o.Profile == (profile.Profile{}) {
		o.Profile = profile.Presets["runbook"]
		if valine {
			o.Profile = profile.Presets["valine"]
		}
	}
	if err := o.Profile.Validate(); err != nil {
		return o, fmt.Errorf("testbed options: %w", err)
	}
	if len(o.Functions) == 0 {
		o.Functions = []string{"valine-tb-" + randomHex(6)}
	} else {
		o.Functions = append([]string(nil), o.Functions...)
	}
	seen := map[string]bool{}
	for _, fn := range o.Functions {
		switch {
		case fn == "":
			return o, fmt.Errorf("testbed options: empty function name")
		case seen[fn]:
			return o, fmt.Errorf("testbed options: function %s listed twice", fn)
		}
		seen[fn] = true
	}
	for k := range o.FunctionTags {
		if k == "" {
			return o, fmt.Errorf("testbed options: empty function tag key")
		}
	}
	o.FunctionTags = maps.Clone(o.FunctionTags)
	env := map[string]string{
		"NODE_ENV":     "production",
		"DATABASE_URL": "postgres://valine:" + randomHex(12) + "@db.internal:5432/valine",
		"LOG_LEVEL":    "info",
		"CORS_ORIGIN":  "https://app.valine.test",
	}
	maps.Copy(env, o.ExtraEnv)
	for _, v := range []string{o.Profile.SecretVar, o.Profile.SecondaryVar} {
		if _, ok := env[v]; ok && v != "" {
			return o, fmt.Errorf("testbed options: ExtraEnv must not set the secret variable %s", v)
		}
	}
	o.ExtraEnv = env
	if o.InitialSecret == "" {
		o.InitialSecret = randomSecret()
	}
	if o.ProbeEmail == "" {
		o.ProbeEmail = "probe@valine.test"
	}
	if o.ProbePassword == "" {
		o.ProbePassword = "pw-" + randomHex(12)
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = 15 * time.Minute
		if valine {
			o.AccessTTL = valineAccessTTL
		}
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = 7 * 24 * time.Hour
	}
	if o.UpdateDuration < 0 {
		return o, fmt.Errorf("testbed options: negative UpdateDuration %s", o.UpdateDuration)
	}
	if o.LambdaQuotas != nil {
		q := *o.LambdaQuotas
		o.LambdaQuotas = &q
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	busy, err := busyDefaults(o.Busy, valine)
	if err != nil {
		return o, err
	}
	o.Busy = busy
	if o.Deploy, err = deployDefaults(o.Deploy, o.Profile); err != nil {
		return o, fmt.Errorf("testbed options: %w", err)
	}
	if o.RuntimeSecrets, err = runtimeDefaults(o.RuntimeSecrets, valine); err != nil {
		return o, fmt.Errorf("testbed options: %w", err)
	}
	return o, nil
}

// runtimeDefaults copies r, fills its CacheTTL and checks its sources.
func runtimeDefaults(r *RuntimeSecrets, valine bool) (*RuntimeSecrets, error) {
	if r == nil {
		return nil, nil
	}
	rs := *r
	if rs.CacheTTL == 0 {
		rs.CacheTTL = defaultCacheTTL
	}
	if _, err := parseSecretRef(rs.Source, refSSM, refSecretsManager); err != nil {
		return nil, fmt.Errorf("RuntimeSecrets.Source: %w", err)
	}
	if _, err := parseSecretRef(rs.SecondarySource, refSSM, refSecretsManager, refLiteral); err != nil {
		return nil, fmt.Errorf("RuntimeSecrets.SecondarySource: %w", err)
	}
	if valine && rs.SecondarySource != "" {
		return nil, fmt.Errorf("RuntimeSecrets.SecondarySource: BackendValine verifies with one secret, so a secondary has nothing to act on")
	}
	return &rs, nil
}
