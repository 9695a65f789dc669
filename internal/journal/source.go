package journal

import (
	"fmt"
	"strings"
	"time"
)

// SourceKind is where the secret's source of truth lives: the value the
// next deploy writes onto the fleet.
type SourceKind string

// The sources of truth.
const (
	// SourceLambdaEnv: the functions' environment is the truth (nothing
	// but the functions holds the secret).
	SourceLambdaEnv SourceKind = "lambda-env"
	// SourceSSM: an SSM Parameter Store SecureString that the deploy reads
	// (for example ${ssm:/valine/prod/jwt-secret}); the secondary, where
	// used, is its own parameter, the name with "-secondary" appended.
	SourceSSM SourceKind = "ssm"
	// SourceSecretsManager: a Secrets Manager secret that the deploy reads,
	// the primary AWSCURRENT, the secondary AWSPREVIOUS, and a new secret
	// AWSPENDING while it is staged, as Secrets Manager's own rotation does.
	SourceSecretsManager SourceKind = "secretsmanager"
)

// Source is a source of truth: a kind and, for a store, its name.
type Source struct {
	Kind SourceKind
	// Name is the parameter's name ("/valine/prod/jwt-secret") or the
	// secret's name or ARN; empty for SourceLambdaEnv.
	Name string
}

// LambdaEnv is the default source: the functions' environment.
var LambdaEnv = Source{Kind: SourceLambdaEnv}

// ParseSource reads "lambda-env", "ssm:/name" or "secretsmanager:name".
// An empty string is LambdaEnv.
func ParseSource(s string) (Source, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == string(SourceLambdaEnv) {
		return LambdaEnv, nil
	}
	if len(s) > maxTagValue {
		return Source{}, fmt.Errorf("source %.40q…: longer than the %d characters the journal can record (a tag value)", s, maxTagValue)
	}
	kind, name, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return Source{}, fmt.Errorf("unknown source %q (want lambda-env, ssm:/name or secretsmanager:name)", s)
	case SourceKind(kind) == SourceSSM:
		if !validParameterName(name) {
			return Source{}, fmt.Errorf("source %q: %q is not an SSM parameter name (letters, digits and . - _ /, a path starting with /, at most 1011 characters, not starting with aws or ssm)", s, name)
		}
		return Source{Kind: SourceSSM, Name: name}, nil
	case SourceKind(kind) == SourceSecretsManager:
		if !validSecretName(name) {
			return Source{}, fmt.Errorf("source %q: %q is not a Secrets Manager secret name or ARN (letters, digits and /_+=.@-, at most 512 characters)", s, name)
		}
		return Source{Kind: SourceSecretsManager, Name: name}, nil
	}
	return Source{}, fmt.Errorf("unknown source %q (want lambda-env, ssm:/name or secretsmanager:name)", s)
}

// String is the form ParseSource reads: "lambda-env", "ssm:/name",
// "secretsmanager:name".
func (s Source) String() string {
	if s.Kind == "" || s.Kind == SourceLambdaEnv {
		return string(SourceLambdaEnv)
	}
	return string(s.Kind) + ":" + s.Name
}

// IsStore reports whether the source is a store (SSM or Secrets Manager)
// rather than the functions' environment.
func (s Source) IsStore() bool {
	return s.Kind == SourceSSM || s.Kind == SourceSecretsManager
}

// SecondaryParameter is the SSM parameter holding the secondary secret of
// an SSM source: its name with "-secondary" appended.
func (s Source) SecondaryParameter() string { return s.Name + "-secondary" }

// validParameterName reports whether n is a name SSM accepts: letters,
// digits and . - _ (and / as a path separator, a hierarchy starting with
// /), at most 1011 characters, not prefixed aws or ssm.
func validParameterName(n string) bool {
	if n == "" || len(n) > 1011 || strings.Contains(n, "//") || strings.HasSuffix(n, "/") {
		return false
	}
	low := strings.ToLower(strings.TrimPrefix(n, "/"))
	if strings.HasPrefix(low, "aws") || strings.HasPrefix(low, "ssm") {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/", c)) {
			return false
		}
	}
	return true
}

// validSecretName reports whether n is a secret name or ARN Secrets
// Manager accepts.
func validSecretName(n string) bool {
	if n == "" || len(n) > 2048 {
		return false
	}
	if strings.HasPrefix(n, "arn:") {
		return !strings.ContainsAny(n, " \t\n")
	}
	if len(n) > 512 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/_+=.@-", c)) {
			return false
		}
	}
	return true
}

// Delivery is how the fleet gets the secret from its source.
type Delivery string

// The deliveries.
const (
	// DeliveryEnv: the secret is in every function's environment (a deploy
	// resolves the source into it), so a rotation writes the fleet too.
	DeliveryEnv Delivery = "env"
	// DeliveryRuntime: the functions read the source at run time (the AWS
	// Parameters and Secrets Lambda Extension, caching for a TTL), so a
	// rotation writes the store alone.
	DeliveryRuntime Delivery = "runtime"
)

// OrEnv is d, or DeliveryEnv for the "" a journal from before deliveries
// (or an engine not told one) holds.
func (d Delivery) OrEnv() Delivery {
	if d == "" {
		return DeliveryEnv
	}
	return d
}

// ParseDelivery reads "env" or "runtime"; "" is DeliveryEnv.
func ParseDelivery(s string) (Delivery, error) {
	switch d := Delivery(strings.TrimSpace(s)); d {
	case "", DeliveryEnv:
		return DeliveryEnv, nil
	case DeliveryRuntime:
		return d, nil
	}
	return "", fmt.Errorf("unknown delivery %q (want env or runtime)", s)
}

// DefaultCacheTTL is the AWS Parameters and Secrets Lambda Extension's
// default cache lifetime.
const DefaultCacheTTL = 5 * time.Minute
