package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
)

// operationSource is the source of truth of one operation: where it
// writes each phase's secrets before (or, delivered at run time, instead
// of) the fleet.
type operationSource struct {
	source   journal.Source
	store    Store // nil for the functions' environment
	delivery journal.Delivery
	ttl      time.Duration
	// notes are the plan's lines about the source and the stacks, which a
	// rotation also prints as it starts.
	notes []string
}

// runtime reports whether the functions read the secret at run time, so
// that no function is written.
func (o operationSource) runtime() bool {
	return o.store != nil && o.delivery == journal.DeliveryRuntime
}

// useSource sets the source of the operation about to run. inProgress
// says j is a rotation the operation continues (resume, finalize,
// rollback): it then uses j's source, delivery and TTL, and refuses a
// different one asked for. Otherwise (a new rotation) what was asked
// wins, then what the last rotation (j, when found) journalled, then the
// functions' environment.
func (e *Engine) useSource(j journal.Journal, found, inProgress bool) error {
	src, delivery, ttl := e.Source, e.Delivery, e.CacheTTL
	if inProgress {
		if src.Kind != "" && src.String() != j.Source.String() {
			return fmt.Errorf("%w: rotation %s journalled source %s; run it with --source %s (or without --source)",
				ErrSourceMismatch, j.ID, j.Source, j.Source)
		}
		if delivery != "" && delivery.OrEnv() != j.Delivery.OrEnv() {
			return fmt.Errorf("%w: rotation %s journalled delivery %s; run it with --delivery %s (or without --delivery)",
				ErrSourceMismatch, j.ID, j.Delivery.OrEnv(), j.Delivery.OrEnv())
		}
		src, delivery, ttl = j.Source, j.Delivery, max(ttl, j.CacheTTL)
	} else if found {
		if src.Kind == "" {
			src = j.Source
		}
		if delivery == "" {
			delivery = j.Delivery
		}
		if ttl == 0 {
			ttl = j.CacheTTL
		}
	}
	if src.Kind == "" {
		src = journal.LambdaEnv
	}
	delivery = delivery.OrEnv()
	if delivery == journal.DeliveryRuntime && !src.IsStore() {
		return fmt.Errorf("%w: --delivery runtime needs a store to read from (--source ssm:/name or secretsmanager:name)", ErrInvalidSource)
	}
	if e.CacheTTL > 0 && delivery != journal.DeliveryRuntime {
		return fmt.Errorf("%w: a cache TTL (--cache-ttl %s) applies to functions that read the store at run time (--delivery runtime); this operation delivers through the functions' environment", ErrInvalidSource, e.CacheTTL)
	}
	if delivery == journal.DeliveryRuntime && ttl <= 0 {
		ttl = journal.DefaultCacheTTL
	}
	if delivery != journal.DeliveryRuntime {
		ttl = 0
	}
	store, err := NewStore(src, e.Stores)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSource, err)
	}
	e.op = operationSource{source: src, store: store, delivery: delivery, ttl: ttl}
	return nil
}

// ErrInvalidSource is returned for a source or delivery that cannot be
// used (runtime delivery from the functions' environment, a store with no
// client).
var ErrInvalidSource = errors.New("unusable source of truth")

// journalSource records the operation's source in j.
func (e *Engine) journalSource(j *journal.Journal) {
	j.Source, j.Delivery, j.CacheTTL = journal.Source{}, "", 0
	if e.op.store != nil {
		j.Source = e.op.source
	}
	if e.op.delivery == journal.DeliveryRuntime {
		j.Delivery, j.CacheTTL = journal.DeliveryRuntime, e.op.ttl
	}
}

// putStore makes the operation's store hold pair before any function
// does, audited under j. It does nothing for the functions' environment.
func (e *Engine) putStore(ctx context.Context, j journal.Journal, pair secretPair) error {
	if e.op.store == nil {
		return nil
	}
	changed, err := e.op.store.Put(ctx, j, pair.primary, pair.secondary)
	what := fmt.Sprintf("%s holds primary %s, secondary %s", e.op.source, pair.primary, fpOrNone(pair.secondary))
	switch {
	case err != nil:
		e.audit(j, "source", "failed", fmt.Sprintf("putting primary %s, secondary %s in %s: %v", pair.primary, fpOrNone(pair.secondary), e.op.source, err), nil)
		return fmt.Errorf("writing the source of truth %s before the fleet: %w", e.op.source, err)
	case changed:
		e.audit(j, "source", "ok", what+" (written and read back)", nil)
		e.say("source %s", what)
	}
	return nil
}

// stageStore prepares the new secret in the operation's store, before the
// journal says backed-up.
func (e *Engine) stageStore(ctx context.Context, j journal.Journal, old, next secret.Secret) error {
	if e.op.store == nil {
		return nil
	}
	if err := e.op.store.Stage(ctx, j, old, next); err != nil {
		return fmt.Errorf("staging the new secret in %s: %w", e.op.source, err)
	}
	e.audit(j, "source", "ok", fmt.Sprintf("%s: new %s staged, old %s named after %s", e.op.source, next, old, j.ID), nil)
	return nil
}

// propagation is how long a verification must allow a change to reach
// every function: the cache TTL when they read the store at run time.
func (e *Engine) propagation() time.Duration {
	if e.op.runtime() {
		return e.op.ttl
	}
	return 0
}

// propagatingVerifier is the verifier, waiting out the operation's
// propagation where it can (ProbeVerifier.WithPropagation).
func (e *Engine) propagatingVerifier() Verifier {
	if p, ok := e.Verifier.(interface{ WithPropagation(time.Duration) Verifier }); ok && e.propagation() > 0 {
		return p.WithPropagation(e.propagation())
	}
	return e.Verifier
}

// storePlan says what a rotation does to its store.
func (e *Engine) storePlan(stored, storedSecondary, next secret.Secret) []string {
	lines := []string{fmt.Sprintf("source of truth %s (holds %s): each phase's secrets are written there and read back before any function changes, starting with the new %s", e.op.source, stored, next)}
	if !storedSecondary.IsEmpty() {
		lines = append(lines, fmt.Sprintf("  its secondary %s is removed in the phases without one", storedSecondary))
	}
	if e.op.runtime() {
		lines = append(lines, fmt.Sprintf("the functions read %s at run time (cache TTL %s): no function is written; the verification allows the TTL for the change to reach them", e.op.source, e.op.ttl))
	}
	return lines
}

// describe says what a fleet change does, with the source of truth
// written first and, for runtime delivery, no function written.
func (o operationSource) describe(fleetChange string) string {
	switch {
	case o.runtime():
		return fmt.Sprintf("in %s (the functions read it at run time, cache TTL %s; none is written): %s", o.source, o.ttl, fleetChange)
	case o.store != nil:
		return fmt.Sprintf("in %s first (written and read back), then: %s", o.source, fleetChange)
	}
	return fleetChange
}
