package rotate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/valine/valine-check/internal/journal"
)

// ErrLocked is returned when another operation holds the fleet's lock.
var ErrLocked = errors.New("another valine-check operation holds this fleet's lock")

// LockInfo says who holds a fleet's lock and since when. It is the lock
// secret's value: no secret in it.
type LockInfo struct {
	Holder    string    `json:"holder"`
	Operation string    `json:"operation"`
	Since     time.Time `json:"since"`
	// Host and PID say which process holds it, so that a run on the same
	// machine can tell a dead holder from a live one.
	Host string `json:"host"`
	PID  int    `json:"pid"`
}

func (l LockInfo) String() string {
	return fmt.Sprintf("%s by %s since %s", l.Operation, l.Holder, l.Since.UTC().Format(time.RFC3339))
}

// lockName is the lock secret beside the backup.
func (b Backup) lockName() string { return b.Name + "-lock" }

// Lock takes the fleet's lock so that two operators cannot change one
// fleet at once. CreateSecret refuses a name that exists, which makes it
// the atomic step: whoever creates the lock secret holds the lock. The
// returned release deletes it (without the recovery window, so the name is
// free at once). A process that dies keeps the lock until BreakLock.
func (b Backup) Lock(ctx context.Context, info LockInfo) (release func(context.Context) error, err error) {
	value, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encoding the lock: %w", err)
	}
	_, err = b.API.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(b.lockName()),
		SecretString: aws.String(string(value)),
		Description:  aws.String("valine-check: held while an operation changes the fleet of " + b.Name),
	})
	var taken *types.ResourceExistsException
	switch {
	case errors.As(err, &taken):
		held, _, rerr := b.lockHolder(ctx)
		if rerr != nil {
			return nil, fmt.Errorf("%w (%s; its holder cannot be read: %v)", ErrLocked, b.lockName(), rerr)
		}
		return nil, fmt.Errorf("%w: %s; if that run is dead, --break-lock frees it", ErrLocked, held)
	case err != nil:
		return nil, fmt.Errorf("taking the lock %s: %w", b.lockName(), err)
	}
	return func(ctx context.Context) error {
		_, err := b.API.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
			SecretId: aws.String(b.lockName()), ForceDeleteWithoutRecovery: aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("releasing the lock %s: %w", b.lockName(), err)
		}
		return nil
	}, nil
}

// BreakLock frees a lock left by a run that died, and says whose it was
// (false when there was none). Only on an operator's explicit request.
func (b Backup) BreakLock(ctx context.Context) (LockInfo, bool, error) {
	held, found, err := b.lockHolder(ctx)
	if err != nil || !found {
		return held, found, err
	}
	_, err = b.API.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String(b.lockName()), ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	var gone *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &gone) {
		return held, true, fmt.Errorf("breaking the lock %s: %w", b.lockName(), err)
	}
	return held, true, nil
}

func (b Backup) lockHolder(ctx context.Context) (LockInfo, bool, error) {
	out, err := b.API.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(b.lockName())})
	var gone *types.ResourceNotFoundException
	switch {
	case errors.As(err, &gone):
		return LockInfo{}, false, nil
	case err != nil:
		return LockInfo{}, false, fmt.Errorf("reading the lock %s: %w", b.lockName(), err)
	}
	var info LockInfo
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &info); err != nil {
		return LockInfo{Holder: "unknown (unreadable lock)"}, true, nil
	}
	return info, true, nil
}

// lock takes the fleet's lock for one operation (of rotation j, whose ID
// may be the one about to start); release runs even when ctx was
// cancelled (an interrupted operation must not keep the lock). Taking and
// releasing it are AWS writes, so both are audited.
func (e *Engine) lock(ctx context.Context, operation string, j journal.Journal) (func(), error) {
	host, _ := os.Hostname()
	info := LockInfo{
		Holder:    fmt.Sprintf("%s (pid %d on %s)", orUnknown(e.Operator), os.Getpid(), host),
		Operation: operation,
		Since:     e.now().UTC(),
		Host:      host,
		PID:       os.Getpid(),
	}
	release, err := e.Backup.Lock(ctx, info)
	if errors.Is(err, ErrLocked) {
		// A lock left on this machine by a process that is gone (or by this
		// very process, whose release failed) belongs to a crashed run:
		// re-running after a crash must converge without a manual step.
		if held, found, rerr := e.Backup.lockHolder(ctx); rerr == nil && found && deadHere(held, e.Backup.lockName()) {
			e.say("taking over the lock of a run that is gone: %s", held)
			if _, _, berr := e.Backup.BreakLock(ctx); berr != nil {
				return nil, berr
			}
			release, err = e.Backup.Lock(ctx, info)
		}
	}
	if err != nil {
		return nil, err
	}
	// Marked held at once, before anything else: another operation of this
	// process that finds the lock must see it is not a dead run's.
	operations.Store(e.Backup.lockName(), true)
	e.audit(j, "lock", "taken", fmt.Sprintf("%s holds %s for %s", info.Holder, e.Backup.lockName(), operation), nil)
	return func() {
		defer operations.Delete(e.Backup.lockName())
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			e.audit(j, "unlock", "failed", err.Error(), nil)
			e.say("warning: %v; 'valine-check rotate --break-lock' frees it", err)
			return
		}
		e.audit(j, "unlock", "released", fmt.Sprintf("%s freed after %s", e.Backup.lockName(), operation), nil)
	}, nil
}

// deadHere reports whether the lock's holder ran on this machine and is
// gone: another process that no longer runs, or this very process, whose
// operation released it (or failed to).
func deadHere(held LockInfo, lockName string) bool {
	host, _ := os.Hostname()
	if host == "" || held.Host != host {
		return false
	}
	if held.PID == os.Getpid() {
		return !heldHere(lockName)
	}
	return !processAlive(held.PID)
}

// operations are the locks that operations of this process hold right
// now: a lock with this process's id that is not among them was left by an
// operation whose release failed, and may be taken over.
var operations sync.Map

func heldHere(lockName string) bool {
	_, ok := operations.Load(lockName)
	return ok
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown operator"
	}
	return s
}

// processAlive reports whether a process with that id runs on this machine.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM) // EPERM: alive, someone else's
}

// ErrLockHolderAlive is returned when --break-lock is asked to free a lock
// whose holder still runs on this machine.
var ErrLockHolderAlive = errors.New("the lock's holder is still running on this machine")

// BreakLock frees the fleet's lock on an operator's explicit request and
// says whose it was and how old (false when there was none). It refuses a
// lock whose holder is alive on this machine: that run is working, not
// dead. A lock taken on another machine cannot be checked, so it is freed
// as asked, and the state says who took it and when.
func (e *Engine) BreakLock(ctx context.Context) (LockState, bool, error) {
	held, found, err := e.Backup.lockHolder(ctx)
	if err != nil || !found {
		return LockState{}, found, err
	}
	st := LockState{Info: held, Age: e.now().Sub(held.Since), Dead: deadHere(held, e.Backup.lockName())}
	host, _ := os.Hostname()
	if held.Host == host && host != "" && !st.Dead {
		return st, true, fmt.Errorf("%w: %s (pid %d); nothing was freed", ErrLockHolderAlive, st, held.PID)
	}
	if _, _, err := e.Backup.BreakLock(ctx); err != nil {
		return st, true, err
	}
	e.audit(journal.Journal{}, "unlock", "broken", "freed on request: "+st.String(), nil)
	return st, true, nil
}
