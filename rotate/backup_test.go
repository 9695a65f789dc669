package rotate_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// newBackup starts a World and returns a Backup on a fresh secret name, and
// the SDK client behind it for setting up and inspecting states directly.
func newBackup(t *testing.T, opts ...func(*secretsmanager.Options)) (*testbed.World, rotate.Backup, *secretsmanager.Client) {
	t.Helper()
	w, _ := start(t, testbed.Options{})
	c := secretsmanager.NewFromConfig(w.AWS, opts...)
	return w, rotate.Backup{API: c, Name: "valine-backup-" + rand.Text()[:12]}, c
}

// noRetries makes the first failure of a call final, as a crash would.
func noRetries(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 }

// fastRetries keeps the SDK's retries but not its backoff.
func fastRetries(o *secretsmanager.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
}

func createSecret(t *testing.T, c *secretsmanager.Client, name string, value *string) {
	t.Helper()
	if _, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: value}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
}

func putSecret(t *testing.T, c *secretsmanager.Client, name, value string) {
	t.Helper()
	if _, err := c.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)}); err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
}

func reveal(s secret.Secret) string { return string(s.Reveal()) }

// wantStored checks the backup's AWSCURRENT and AWSPREVIOUS, read through
// Current and Previous.
func wantStored(t *testing.T, b rotate.Backup, current, previous secret.Secret) {
	t.Helper()
	cur, err := b.Current(t.Context())
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	prev, err := b.Previous(t.Context())
	if err != nil {
		t.Fatalf("Previous: %v", err)
	}
	if !cur.Equal(current) || !prev.Equal(previous) {
		t.Errorf("backup holds current %s, previous %s; want %s, %s", cur, prev, current, previous)
	}
}

// noValueIn fails when err's text contains any of the values.
func noValueIn(t *testing.T, err error, values ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, v := range values {
		if v != "" && strings.Contains(err.Error(), v) {
			t.Errorf("error leaks a secret value: %v", err)
		}
	}
}

func TestBackupStoreConvergesFromEveryState(t *testing.T) {
	t.Parallel()
	other := mustSecret(t)
	cases := []struct {
		name string
		// setup builds the starting state from old and new.
		setup               func(t *testing.T, c *secretsmanager.Client, name string, old, next secret.Secret)
		wantCreate, wantPut int
	}{
		{
			name:       "secret missing",
			setup:      func(*testing.T, *secretsmanager.Client, string, secret.Secret, secret.Secret) {},
			wantCreate: 1, wantPut: 1,
		},
		{
			name: "current is old",
			setup: func(t *testing.T, c *secretsmanager.Client, name string, old, _ secret.Secret) {
				createSecret(t, c, name, aws.String(reveal(old)))
			},
			wantPut: 1,
		},
		{
			name: "current is old over an older previous",
			setup: func(t *testing.T, c *secretsmanager.Client, name string, old, _ secret.Secret) {
				createSecret(t, c, name, aws.String(reveal(other)))
				putSecret(t, c, name, reveal(old))
			},
			wantPut: 1,
		},
		{
			name: "current is new over previous old: nothing to do",
			setup: func(t *testing.T, c *secretsmanager.Client, name string, old, next secret.Secret) {
				createSecret(t, c, name, aws.String(reveal(old)))
				putSecret(t, c, name, reveal(next))
			},
		},
		{
			name: "current is new over another previous",
			setup: func(t *testing.T, c *secretsmanager.Client, name string, _, next secret.Secret) {
				createSecret(t, c, name, aws.String(reveal(other)))
				putSecret(t, c, name, reveal(next))
			},
			wantPut: 2,
		},
		{
			name: "current is another secret",
			setup: func(t *testing.T, c *secretsmanager.Client, name string, _, _ secret.Secret) {
				createSecret(t, c, name, aws.String(reveal(other)))
			},
			wantPut: 2,
		},
		{
			name: "current is short",
			setup: func(t *testing.T, c *secretsmanager.Client, name string, _, _ secret.Secret) {
				createSecret(t, c, name, aws.String("too-short"))
			},
			wantPut: 2,
		},
		{
			name: "secret exists without a value",
			setup: func(t *testing.T, c *secretsmanager.Client, name string, _, _ secret.Secret) {
				createSecret(t, c, name, nil)
			},
			wantPut: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, b, c := newBackup(t)
			old, next := mustSecret(t), mustSecret(t)
			tc.setup(t, c, b.Name, old, next)
			creates, puts := w.AWSFront.Calls("secretsmanager:CreateSecret"), w.AWSFront.Calls("secretsmanager:PutSecretValue")

			err := b.Store(t.Context(), old, next)
			if err != nil {
				t.Fatalf("Store: %v", err)
			}
			if got := w.AWSFront.Calls("secretsmanager:CreateSecret") - creates; got != tc.wantCreate {
				t.Errorf("CreateSecret calls = %d, want %d", got, tc.wantCreate)
			}
			if got := w.AWSFront.Calls("secretsmanager:PutSecretValue") - puts; got != tc.wantPut {
				t.Errorf("PutSecretValue calls = %d, want %d", got, tc.wantPut)
			}
			wantStored(t, b, next, old)

			// Store again: nothing left to do.
			puts = w.AWSFront.Calls("secretsmanager:PutSecretValue")
			if err := b.Store(t.Context(), old, next); err != nil {
				t.Fatalf("Store again: %v", err)
			}
			if got := w.AWSFront.Calls("secretsmanager:PutSecretValue") - puts; got != 0 {
				t.Errorf("Store again made %d PutSecretValue calls, want 0", got)
			}
			wantStored(t, b, next, old)
		})
	}
}

// TestBackupStoreAcrossRotations follows one fleet's backup through
// several rotations and a rollback, where a value comes back: each Store
// must still move the labels (a token derived from the value alone would
// name an existing version, and AWS would ignore the write).
func TestBackupStoreAcrossRotations(t *testing.T) {
	t.Parallel()
	_, b, _ := newBackup(t)
	a, bb, c := mustSecret(t), mustSecret(t), mustSecret(t)
	for i, step := range []struct{ old, next secret.Secret }{
		{a, bb}, // rotate a → b
		{bb, a}, // roll back, recorded as b → a: a comes back
		{a, c},  // rotate a → c
		{c, bb}, // b comes back
		{bb, c}, // and c
		{c, a},  // and a
	} {
		if err := b.Store(t.Context(), step.old, step.next); err != nil {
			t.Fatalf("step %d: Store(%s, %s): %v", i, step.old, step.next, err)
		}
		wantStored(t, b, step.next, step.old)
	}
}

func TestBackupStoreRefusesBeforeAnyCall(t *testing.T) {
	t.Parallel()
	good, other := mustSecret(t), mustSecret(t)
	short := secret.NewSecret("only-31-bytes-long-0123456789ab")
	if len(short.Reveal()) != rotate.MinSecretBytes-1 {
		t.Fatalf("short secret is %d bytes", len(short.Reveal()))
	}
	cases := []struct {
		name      string
		old, next secret.Secret
		want      error
	}{
		{"empty old", secret.Secret{}, good, rotate.ErrEmptySecret},
		{"empty new", good, secret.Secret{}, rotate.ErrShortSecret},
		{"short new", good, short, rotate.ErrShortSecret},
		{"old equals new", good, secret.NewSecret(reveal(good)), rotate.ErrReusedSecret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := &countingAPI{}
			err := rotate.Backup{API: api, Name: "never-touched"}.Store(t.Context(), tc.old, tc.next)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Store error = %v, want %v", err, tc.want)
			}
			if api.calls.Load() != 0 {
				t.Errorf("Store made %d calls before refusing", api.calls.Load())
			}
			noValueIn(t, err, reveal(good), reveal(other), reveal(short))
		})
	}
}

func TestBackupReads(t *testing.T) {
	t.Parallel()
	_, b, c := newBackup(t)
	old, next := mustSecret(t), mustSecret(t)
	if err := b.Store(t.Context(), old, next); err != nil {
		t.Fatalf("Store: %v", err)
	}
	missing := rotate.Backup{API: b.API, Name: b.Name + "-missing"}
	onlyCurrent := rotate.Backup{API: b.API, Name: b.Name + "-one-version"}
	createSecret(t, c, onlyCurrent.Name, aws.String(reveal(old)))
	shortCurrent := rotate.Backup{API: b.API, Name: b.Name + "-short"}
	createSecret(t, c, shortCurrent.Name, aws.String(reveal(old)))
	putSecret(t, c, shortCurrent.Name, "short-value")

	cases := []struct {
		name    string
		read    func(context.Context) (secret.Secret, error)
		want    secret.Secret
		wantErr error
	}{
		{"current", b.Current, next, nil},
		{"previous", b.Previous, old, nil},
		{"current of a missing secret", missing.Current, secret.Secret{}, rotate.ErrNoBackup},
		{"previous of a missing secret", missing.Previous, secret.Secret{}, rotate.ErrNoBackup},
		{"previous of a one-version secret", onlyCurrent.Previous, secret.Secret{}, rotate.ErrNoBackup},
		{"short current", shortCurrent.Current, secret.Secret{}, rotate.ErrBadBackup},
		{"previous under a short current", shortCurrent.Previous, old, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.read(t.Context())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if !got.Equal(tc.want) {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			noValueIn(t, err, reveal(old), reveal(next), "short-value")
		})
	}
}

// TestBackupStoreIsCrashSafe fails PutSecretValue calls and checks that a
// second Store, as a resumed run makes, ends with the right stages.
func TestBackupStoreIsCrashSafe(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// existing, when set, is the backup's current secret beforehand.
		existing bool
		// failFrom and failTo bound the PutSecretValue calls (counted
		// from 1) answered with a 500 during the first Store.
		failFrom, failTo int64
		retries          bool
		firstFails       bool
		wantResumePuts   int
	}{
		{name: "first put fails, the SDK's retry succeeds", failFrom: 1, failTo: 1, retries: true},
		{name: "every put fails: created, never given new", failFrom: 1, failTo: 1 << 30, firstFails: true, wantResumePuts: 1},
		{name: "another current: old stored, new failed", existing: true, failFrom: 2, failTo: 1 << 30, firstFails: true, wantResumePuts: 1},
		{name: "another current: nothing stored", existing: true, failFrom: 1, failTo: 1 << 30, firstFails: true, wantResumePuts: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := noRetries
			if tc.retries {
				opt = fastRetries
			}
			w, b, c := newBackup(t, opt)
			old, next, other := mustSecret(t), mustSecret(t), mustSecret(t)
			if tc.existing {
				createSecret(t, c, b.Name, aws.String(reveal(other)))
			}
			var puts atomic.Int64
			var mu sync.Mutex
			failing := true
			w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
				mu.Lock()
				defer mu.Unlock()
				if r.Header.Get("X-Amz-Target") != "secretsmanager.PutSecretValue" || !failing {
					return nil
				}
				if n := puts.Add(1); n >= tc.failFrom && n <= tc.failTo {
					return &testbed.Fault{Status: http.StatusInternalServerError, ErrorType: "ServiceException", Message: "injected"}
				}
				return nil
			})

			err := b.Store(t.Context(), old, next)
			noValueIn(t, err, reveal(old), reveal(next), reveal(other))
			if tc.firstFails != (err != nil) {
				t.Fatalf("first Store error = %v, want failure %v", err, tc.firstFails)
			}
			mu.Lock()
			failing = false
			mu.Unlock()
			before := w.AWSFront.Calls("secretsmanager:PutSecretValue")
			if err := b.Store(t.Context(), old, next); err != nil {
				t.Fatalf("resumed Store: %v", err)
			}
			if got := w.AWSFront.Calls("secretsmanager:PutSecretValue") - before; got != tc.wantResumePuts {
				t.Errorf("resumed Store made %d PutSecretValue calls, want %d", got, tc.wantResumePuts)
			}
			wantStored(t, b, next, old)
		})
	}
}

// countingAPI is a SecretsAPI that counts calls and fails them all.
type countingAPI struct{ calls atomic.Int64 }

var errNotCalled = errors.New("countingAPI: no call expected")

func (a *countingAPI) DeleteSecret(context.Context, *secretsmanager.DeleteSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	a.calls.Add(1)
	return nil, errNotCalled
}

func (a *countingAPI) CreateSecret(context.Context, *secretsmanager.CreateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	a.calls.Add(1)
	return nil, errNotCalled
}

func (a *countingAPI) PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	a.calls.Add(1)
	return nil, errNotCalled
}

func (a *countingAPI) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	a.calls.Add(1)
	return nil, errNotCalled
}

func (a *countingAPI) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	a.calls.Add(1)
	return nil, errNotCalled
}

func (a *countingAPI) TagResource(context.Context, *secretsmanager.TagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	a.calls.Add(1)
	return nil, errNotCalled
}

func (a *countingAPI) UntagResource(context.Context, *secretsmanager.UntagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error) {
	a.calls.Add(1)
	return nil, errNotCalled
}
