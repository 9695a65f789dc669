// Package secret is the vocabulary of secret values shared by every part of
// valine-check: the Secret and Token types, which print only as
// fingerprints, and the Redactor that keeps known values out of anything
// quoted from outside. It imports nothing of the project.
package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Secret is a JWT signing secret. Every way of printing it (String, Format,
// LogValue, MarshalJSON, MarshalText) shows only its fingerprint, so a Secret
// can travel through logs, reports and errors without leaking. Call Reveal
// only where the bytes are really needed: to sign or to verify.
type Secret struct {
	value string
}

// NewSecret wraps a secret value. An empty value is allowed and is reported
// as "empty"; callers that must refuse it check IsEmpty.
func NewSecret(value string) Secret { return Secret{value: value} }

// Reveal returns the secret's bytes. Never print them.
func (s Secret) Reveal() []byte { return []byte(s.value) }

// IsEmpty reports whether the secret has no value.
func (s Secret) IsEmpty() bool { return s.value == "" }

// Equal reports whether two secrets hold the same value.
func (s Secret) Equal(o Secret) bool { return s.value == o.value }

// Fingerprint is the first 8 hex digits of the SHA-256 of the value, prefixed
// "sha256:". It identifies a secret without revealing it; "empty" for no value.
func (s Secret) Fingerprint() string { return Fingerprint(s.value) }

// String returns the fingerprint.
func (s Secret) String() string { return s.Fingerprint() }

// GoString returns the fingerprint, so %#v cannot leak the value either.
func (s Secret) GoString() string { return "probes.Secret(" + s.Fingerprint() + ")" }

// Format prints the fingerprint whatever the verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, s.Fingerprint()) }

// LogValue makes slog print the fingerprint.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.Fingerprint()) }

// MarshalText encodes the fingerprint (used by JSON map keys, YAML and others).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Fingerprint()), nil }

// MarshalJSON encodes the fingerprint as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.Fingerprint() + `"`), nil }

// Token is a JWT (access or refresh). Like Secret, every way of printing it
// shows only a fingerprint; Reveal gives the compact serialisation.
type Token struct {
	value string
}

// NewToken wraps a compact-serialised JWT.
func NewToken(value string) Token { return Token{value: value} }

// Reveal returns the token's compact serialisation. Never print it.
func (t Token) Reveal() string { return t.value }

// IsEmpty reports whether there is no token.
func (t Token) IsEmpty() bool { return t.value == "" }

// Fingerprint identifies the token without revealing it.
func (t Token) Fingerprint() string { return Fingerprint(t.value) }

// String returns "token:" and the fingerprint.
func (t Token) String() string { return "token:" + t.Fingerprint() }

// GoString returns the fingerprint, so %#v cannot leak the value either.
func (t Token) GoString() string { return "probes.Token(" + t.Fingerprint() + ")" }

// Format prints the fingerprint whatever the verb.
func (t Token) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, t.String()) }

// LogValue makes slog print the fingerprint.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalText encodes the fingerprint.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// MarshalJSON encodes the fingerprint as a JSON string.
func (t Token) MarshalJSON() ([]byte, error) { return []byte(`"` + t.String() + `"`), nil }

// Fingerprint returns "sha256:" and the first 8 hex digits of the SHA-256 of
// value, or "empty" for an empty value. Eight digits tell secrets apart in a
// report without giving an attacker anything to search for.
func Fingerprint(value string) string {
	if value == "" {
		return "empty"
	}
	sum := sha256.Sum256([]byte(value))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// GomegaString keeps Gomega's failure messages, which use reflection and
// ignore String and Format, from printing the value.
func (s Secret) GomegaString() string { return s.GoString() }

// GomegaString keeps Gomega's failure messages from printing the token.
func (t Token) GomegaString() string { return t.GoString() }
