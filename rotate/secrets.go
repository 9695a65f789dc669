package rotate

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/valine/valine-check/probes"
)

// ErrEmptySecret is returned, before any write, when a change would set the
// primary secret to nothing.
var ErrEmptySecret = errors.New("refusing to write an empty primary secret")

// SetSecrets returns a change for UpdateEnv that sets the profile's primary
// variable and, when secondary is not empty, its secondary variable; an
// empty secondary removes the secondary variable. Every other variable is
// left as it is.
func SetSecrets(p probes.Profile, primary, secondary probes.Secret) func(map[string]string) error {
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

// GenerateSecret returns 32 bytes from crypto/rand, base64-encoded, as
// `openssl rand -base64 32` does.
func GenerateSecret() (probes.Secret, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return probes.Secret{}, fmt.Errorf("generating secret: %w", err)
	}
	return probes.NewSecret(base64.StdEncoding.EncodeToString(b)), nil
}

// Refusals of a proposed new secret, before anything is written.
var (
	ErrShortSecret  = errors.New("secret is shorter than 32 bytes")
	ErrReusedSecret = errors.New("secret equals the current or the previous secret")
)

// ValidateNew refuses a new secret that is empty or shorter than
// MinSecretBytes, or equal to the current or the previous secret (either may
// be empty when unknown).
func ValidateNew(next, current, previous probes.Secret) error {
	if len(next.Reveal()) < MinSecretBytes {
		return fmt.Errorf("new secret %s: %w", next, ErrShortSecret)
	}
	if next.Equal(current) || (!previous.IsEmpty() && next.Equal(previous)) {
		return fmt.Errorf("new secret %s: %w", next, ErrReusedSecret)
	}
	return nil
}
