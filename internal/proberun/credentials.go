package proberun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/valine/valine-check/internal/secret"
)

// Credentials are the probe user's email and password.
type Credentials struct {
	Email    string
	Password secret.Secret
}

// CredentialSource gives the probe user's credentials when a run starts,
// not when the probe is built, so a changed password is picked up.
type CredentialSource interface {
	Credentials(ctx context.Context) (Credentials, error)
}

// Static is a CredentialSource that always gives the same credentials (the
// command line's VALINE_PROBE_EMAIL and VALINE_PROBE_PASSWORD).
type Static Credentials

// Credentials returns the credentials.
func (s Static) Credentials(context.Context) (Credentials, error) { return Credentials(s), nil }

// SecretValueAPI is the one Secrets Manager call SecretCredentials makes,
// with the SDK's exact signature.
type SecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// DefaultCredentialsTTL is how long SecretCredentials keeps what it read.
const DefaultCredentialsTTL = 5 * time.Minute

// ErrBadCredentialsSecret is wrapped when the credentials secret does not
// hold a JSON object with non-empty string fields "email" and "password".
var ErrBadCredentialsSecret = errors.New(`the probe credentials secret must hold {"email": "...", "password": "..."}`)

// SecretCredentials reads the probe user's credentials from a Secrets
// Manager secret (AWSCURRENT) holding {"email": "...", "password": "..."}
// and keeps them for TTL: a scheduled probe running every few minutes
// reads the secret at most once per TTL, and a changed password is seen at
// most TTL after the change (sooner after a failed login: see Forget). A
// failed read is not cached. Safe for concurrent use.
type SecretCredentials struct {
	API      SecretValueAPI
	SecretID string
	// TTL bounds how long a read value is used; 0 means
	// DefaultCredentialsTTL, a negative TTL reads on every run.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	value   Credentials
	fetched time.Time
	cached  bool
}

// Credentials returns the cached credentials while they are younger than
// TTL, else reads the secret. Errors name the secret, never its value.
func (s *SecretCredentials) Credentials(ctx context.Context) (Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cached && now.Sub(s.fetched) < s.ttl() {
		return s.value, nil
	}
	c, err := s.read(ctx)
	if err != nil {
		return Credentials{}, err
	}
	s.value, s.fetched, s.cached = c, now, true
	return c, nil
}

// Forget drops the cached credentials, so the next run reads the secret
// again. The run calls it after the API refused the login: the password
// may just have been changed.
func (s *SecretCredentials) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cached = false
}

func (s *SecretCredentials) read(ctx context.Context) (Credentials, error) {
	out, err := s.API.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretID)})
	if err != nil {
		return Credentials{}, fmt.Errorf("reading the probe credentials from secret %s: %w", s.SecretID, err)
	}
	raw := []byte(aws.ToString(out.SecretString))
	if out.SecretString == nil {
		raw = out.SecretBinary
	}
	var v struct {
		Email    *string `json:"email"`
		Password *string `json:"password"`
	}
	// The decoder's error is left out: it may quote part of the value.
	if err := json.Unmarshal(raw, &v); err != nil {
		return Credentials{}, fmt.Errorf("secret %s is not a JSON object of strings: %w", s.SecretID, ErrBadCredentialsSecret)
	}
	if v.Email == nil || *v.Email == "" || v.Password == nil || *v.Password == "" {
		return Credentials{}, fmt.Errorf("secret %s lacks a non-empty email or password: %w", s.SecretID, ErrBadCredentialsSecret)
	}
	return Credentials{Email: *v.Email, Password: secret.NewSecret(*v.Password)}, nil
}

func (s *SecretCredentials) ttl() time.Duration {
	switch {
	case s.TTL == 0:
		return DefaultCredentialsTTL
	case s.TTL < 0:
		return 0
	}
	return s.TTL
}

func (s *SecretCredentials) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
