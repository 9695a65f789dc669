package rotate

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

// ErrEmptySecret is returned, before any write, when a change would set the
// primary secret to nothing.
var ErrEmptySecret = errors.New("refusing to write an empty primary secret")

// SetSecrets returns a change for UpdateEnv that sets the profile's primary
// variable and, when secondary is not empty, its secondary variable; an
// empty secondary removes the secondary variable. Every other variable is
// left as it is.
func SetSecrets(p profile.Profile, primary, secondary secret.Secret) func(map[string]string) error {
	return func(env map[string]string) error {
		if primary.IsEmpty() {
			return ErrEmptySecret
		}
		env[p.SecretVar] = string(primary.Reveal())
		if secondary.IsEmpty() {
			if p.SecondaryVar != "" {
				delete(env, p.SecondaryVar)
			}
			return nil
		}
		if p.SecondaryVar == "" {
			return fmt.Errorf("profile %s names no secondary variable, so a grace period cannot be staged", p.Name)
		}
		env[p.SecondaryVar] = string(secondary.Reveal())
		return nil
	}
}

// generatedSecretLen is the length of a GenerateSecret value: 32 bytes in
// base64.
const generatedSecretLen = 44

// GenerateSecret returns 32 bytes from crypto/rand, base64-encoded, as
// `openssl rand -base64 32` does.
func GenerateSecret() (secret.Secret, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return secret.Secret{}, fmt.Errorf("generating secret: %w", err)
	}
	return secret.NewSecret(base64.StdEncoding.EncodeToString(b)), nil
}

// Refusals of a proposed new secret, before anything is written.
var (
	ErrShortSecret  = errors.New("secret is shorter than 32 bytes")
	ErrReusedSecret = errors.New("secret equals the current or the previous secret")
	ErrSecretShape  = errors.New("secret is not a usable signing secret")
)

// ValidateNew refuses a new secret that is empty or shorter than
// MinSecretBytes, not valid UTF-8, or holding whitespace (a pasted line
// break, a secret with a stray space), or equal to the current or the
// previous secret (either may be empty when unknown; after a rollback the
// previous one is the secret the rollback withdrew).
func ValidateNew(next, current, previous secret.Secret) error {
	v := next.Reveal()
	switch {
	case tooShort(next):
		return fmt.Errorf("new secret %s: %w", next, ErrShortSecret)
	case !utf8.Valid(v):
		return fmt.Errorf("new secret %s: %w: it is not valid UTF-8", next, ErrSecretShape)
	case bytes.IndexFunc(v, unicode.IsSpace) >= 0:
		return fmt.Errorf("new secret %s: %w: it holds whitespace", next, ErrSecretShape)
	}
	if next.Equal(current) || (!previous.IsEmpty() && next.Equal(previous)) {
		return fmt.Errorf("new secret %s: %w", next, ErrReusedSecret)
	}
	return nil
}

// SecretShape describes a variable's value without revealing it: its
// length and what it looks like ("44 bytes, base64"), and a reason it does
// not look like an HMAC signing secret, or "" when it does.
func SecretShape(v string) (shape, problem string) {
	kind := "opaque"
	switch {
	case hexLike.MatchString(v):
		kind = "hex"
	case base64Like.MatchString(v):
		kind = "base64"
	}
	shape = fmt.Sprintf("%d bytes, %s", len(v), kind)
	switch {
	case v == "":
		problem = "it is empty"
	case strings.Contains(v, "://"):
		problem = "it looks like a URL"
	case strings.IndexFunc(v, unicode.IsSpace) >= 0:
		problem = "it holds whitespace"
	case !utf8.ValidString(v):
		problem = "it is not valid UTF-8"
	case tooShort(secret.NewSecret(v)):
		problem = fmt.Sprintf("it is shorter than %d bytes", MinSecretBytes)
	}
	if problem != "" {
		shape += ", " + problem
	}
	return shape, problem
}

var (
	base64Like = regexp.MustCompile(`^[A-Za-z0-9+/_-]+={0,2}$`)
	hexLike    = regexp.MustCompile(`^[0-9a-fA-F]+$`)
)
