package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
)

// Store is a source of truth other than the functions' environment: what
// the next deploy writes onto the fleet, or, delivered at run time, what
// the functions read. A rotation makes the store hold each phase's
// secrets (journal.PhaseHolds) before any function does, so a deploy at
// any moment writes what the fleet is about to hold, and a stop anywhere
// converges: Put is idempotent.
type Store interface {
	// Source names the store ("ssm:/valine/prod/jwt-secret").
	Source() journal.Source
	// Read returns the primary and the secondary the store holds now (an
	// empty Secret for none).
	Read(ctx context.Context) (primary, secondary secret.Secret, err error)
	// Stage prepares rotation j's new secret without putting it in force,
	// as the first step of Secrets Manager's rotation protocol does
	// (AWSPENDING), and names the version holding the old one where the
	// store has versions.
	Stage(ctx context.Context, j journal.Journal, old, next secret.Secret) error
	// Put makes the store hold primary and secondary (empty: none),
	// writing nothing it holds already, naming each version it writes
	// after rotation j, and reading the result back: it fails unless the
	// store holds what was asked. changed reports a write.
	Put(ctx context.Context, j journal.Journal, primary, secondary secret.Secret) (changed bool, err error)
}

// ErrStoreMismatch is returned when a store does not read back what was
// written, or holds something other than the fleet and the journal say.
var ErrStoreMismatch = errors.New("the source of truth does not hold the expected secret")

// ErrNoStore is returned when the store a source names does not exist (or
// holds no current value): it must be created, holding the fleet's secret,
// and the deploy made to read it, before a rotation can use it.
var ErrNoStore = errors.New("the source of truth does not exist")

// ErrSourceMismatch is returned when an operation is asked to use a source
// other than the one its rotation journalled.
var ErrSourceMismatch = errors.New("the source of truth differs from the journalled one")

// StoreClients are the clients a Store needs, by kind.
type StoreClients struct {
	SSM     SSMAPI
	Secrets SourceSecretsAPI
}

// NewStore returns the Store for src, or nil for the functions'
// environment (journal.SourceLambdaEnv). A store whose client is missing
// is an error.
func NewStore(src journal.Source, c StoreClients) (Store, error) {
	switch src.Kind {
	case "", journal.SourceLambdaEnv:
		return nil, nil
	case journal.SourceSSM:
		if c.SSM == nil {
			return nil, fmt.Errorf("source %s: no SSM client", src)
		}
		return SSMStore{API: c.SSM, Name: src.Name}, nil
	case journal.SourceSecretsManager:
		if c.Secrets == nil {
			return nil, fmt.Errorf("source %s: no Secrets Manager client", src)
		}
		return SecretsManagerStore{API: c.Secrets, Name: src.Name}, nil
	}
	return nil, fmt.Errorf("unknown source %s", src)
}

// versionLabel names the version holding one of rotation j's secrets:
// "<rotation id>-new" or "<rotation id>-old" (SSM labels and Secrets
// Manager ClientRequestTokens both allow it).
func versionLabel(j journal.Journal, s secret.Secret) string {
	if s.Fingerprint() == j.NewFingerprint {
		return j.ID + "-new"
	}
	return j.ID + "-old"
}

// checkReadBack compares what a store holds with what was asked.
func checkReadBack(src journal.Source, gotPrimary, gotSecondary, primary, secondary secret.Secret) error {
	if !gotPrimary.Equal(primary) || !gotSecondary.Equal(secondary) {
		return fmt.Errorf("%w: %s reads back primary %s, secondary %s after writing %s, %s",
			ErrStoreMismatch, src, fpOrNone(gotPrimary), fpOrNone(gotSecondary), fpOrNone(primary), fpOrNone(secondary))
	}
	return nil
}

// fpOrNone is a secret's fingerprint, or "none".
func fpOrNone(s secret.Secret) string {
	if s.IsEmpty() {
		return "none"
	}
	return s.Fingerprint()
}
