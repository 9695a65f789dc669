package proberun

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// fakeSecret is a Secrets Manager holding one secret value.
type fakeSecret struct {
	mu    sync.Mutex
	value *string
	err   error
	reads int
}

func (f *fakeSecret) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{Name: in.SecretId, SecretString: f.value}, nil
}

func (f *fakeSecret) set(v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.value = aws.String(v)
}

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)} }
func creds(email, pw string) string      { return `{"email":"` + email + `","password":"` + pw + `"}` }

func TestSecretCredentialsCacheIsBounded(t *testing.T) {
	t.Parallel()
	f := &fakeSecret{}
	v := creds("probe@x", "pw-one")
	f.set(v)
	c := newClock()
	s := &SecretCredentials{API: f, SecretID: "probe", TTL: 5 * time.Minute, Now: c.now}
	get := func() Credentials {
		t.Helper()
		got, err := s.Credentials(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := get(); got.Email != "probe@x" || string(got.Password.Reveal()) != "pw-one" || f.reads != 1 {
		t.Fatalf("first read: %s %s, %d reads", got.Email, got.Password, f.reads)
	}
	// The password is changed: runs within the TTL use the cached one,
	// the first run after it sees the change.
	v = creds("probe@x", "pw-two")
	f.set(v)
	c.advance(4*time.Minute + 59*time.Second)
	if got := get(); string(got.Password.Reveal()) != "pw-one" || f.reads != 1 {
		t.Fatalf("within the TTL: %d reads", f.reads)
	}
	c.advance(time.Second)
	if got := get(); string(got.Password.Reveal()) != "pw-two" || f.reads != 2 {
		t.Fatalf("at the TTL: %s, %d reads", got.Password, f.reads)
	}
	// Forget makes the next run read again.
	s.Forget()
	get()
	if f.reads != 3 {
		t.Fatalf("after Forget: %d reads", f.reads)
	}
	// A failed read is not cached, and the last good value is not used.
	c.advance(5 * time.Minute)
	f.err = errors.New("throttled")
	if _, err := s.Credentials(t.Context()); err == nil || !strings.Contains(err.Error(), "probe") {
		t.Fatalf("want an error naming the secret, got %v", err)
	}
	f.err = nil
	get()
	if f.reads != 5 {
		t.Fatalf("after a failed read: %d reads", f.reads)
	}
}

func TestSecretCredentialsTTLDefaults(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		ttl       time.Duration
		step      time.Duration
		wantReads int
	}{
		"zero means five minutes": {0, 4 * time.Minute, 1},
		"negative reads each run": {-1, time.Nanosecond, 2},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeSecret{}
			v := creds("a@b", "pw")
			f.set(v)
			c := newClock()
			s := &SecretCredentials{API: f, SecretID: "probe", TTL: tc.ttl, Now: c.now}
			_, _ = s.Credentials(t.Context())
			c.advance(tc.step)
			_, _ = s.Credentials(t.Context())
			if f.reads != tc.wantReads {
				t.Errorf("%d reads, want %d", f.reads, tc.wantReads)
			}
		})
	}
}

func TestSecretCredentialsRefuseBadValuesWithoutQuotingThem(t *testing.T) {
	t.Parallel()
	const canary = "s3cr3t-canary-value"
	for name, value := range map[string]string{
		"not JSON":         canary,
		"truncated JSON":   `{"email":"a@b","password":"` + canary,
		"number password":  `{"email":"a@b","password":12345}`,
		"no password":      `{"email":"a@b","pass":"` + canary + `"}`,
		"empty email":      `{"email":"","password":"` + canary + `"}`,
		"array":            `["a@b","` + canary + `"]`,
		"password is null": `{"email":"a@b","password":null}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeSecret{}
			f.set(value)
			_, err := (&SecretCredentials{API: f, SecretID: "probe"}).Credentials(t.Context())
			if !errors.Is(err, ErrBadCredentialsSecret) {
				t.Fatalf("want ErrBadCredentialsSecret, got %v", err)
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "12345") {
				t.Errorf("the error quotes the value: %v", err)
			}
		})
	}
}

func TestSecretCredentialsReadsBinarySecrets(t *testing.T) {
	t.Parallel()
	api := binarySecret(`{"email":"a@b","password":"pw"}`)
	got, err := (&SecretCredentials{API: api, SecretID: "probe"}).Credentials(t.Context())
	if err != nil || got.Email != "a@b" || string(got.Password.Reveal()) != "pw" {
		t.Fatalf("%v %v", got, err)
	}
}

type binarySecret string

func (b binarySecret) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return &secretsmanager.GetSecretValueOutput{SecretBinary: []byte(b)}, nil
}
