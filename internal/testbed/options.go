package testbed

import (
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/valine/valine-check/probes"
)

// Options configures a World. Zero values give sensible defaults.
type Options struct {
	// Profile is the deployment shape the API serves; default probes.Presets["runbook"].
	Profile probes.Profile
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
	// bytes in base64, like `openssl rand -base64 32`.
	InitialSecret string
	// ProbeEmail and ProbePassword are the one seeded user's credentials;
	// defaults "probe@valine.test" and a random password.
	ProbeEmail, ProbePassword string
	// PropagationDelay is how stale the API's view of its secrets may get:
	// it re-reads them from the function configuration no more often than
	// this (0 = on every request).
	PropagationDelay time.Duration
	// Latency is injected before each Valine API request is served.
	Latency time.Duration
	// AccessTTL and RefreshTTL are the token lifetimes; defaults 15m and 7*24h.
	AccessTTL, RefreshTTL time.Duration
	// Misbehaviours are the API's deliberate defects at start; see
	// API.SetMisbehaviours to change them later.
	Misbehaviours Misbehaviour
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
)

var misbehaviourNames = []string{
	"AcceptOldTokens", "IgnoreSecondary", "AcceptAlgNone", "AcceptAnyHMAC", "RefreshFails",
	"Down", "AcceptExpired", "AcceptRefreshAsAccess", "SkipSignature",
}

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
	if o.Profile == (probes.Profile{}) {
		o.Profile = probes.Presets["runbook"]
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
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = 7 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
