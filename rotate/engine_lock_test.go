package rotate_test

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

func TestEngineLock(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	cases := []struct {
		name       string
		holder     rotate.LockInfo
		wantLocked bool
	}{
		{"a live process on this machine holds it", rotate.LockInfo{Holder: "other", Operation: "rotate", Host: host, PID: 1}, true},
		{"a process on another machine holds it", rotate.LockInfo{Holder: "ci", Operation: "rotate", Host: "ci-runner-7", PID: 4242}, true},
		{"a dead process on this machine left it", rotate.LockInfo{Holder: "crashed", Operation: "rotate", Host: host, PID: 1 << 30}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			b := rotate.Backup{API: r.sm, Name: r.backupName}
			tc.holder.Since = time.Now()
			if _, err := b.Lock(t.Context(), tc.holder); err != nil {
				t.Fatal(err)
			}
			before, envs := r.updates(), r.envs(t)
			_, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
			if !tc.wantLocked {
				if err != nil {
					t.Fatalf("a dead run's lock must be taken over: %v", err)
				}
				if _, held, _ := b.BreakLock(t.Context()); held {
					t.Error("the lock was not released after the operation")
				}
				return
			}
			if !errors.Is(err, rotate.ErrLocked) {
				t.Fatalf("got %v, want ErrLocked", err)
			}
			if n := r.updates() - before; n != 0 {
				t.Errorf("%d updates while another operation held the lock", n)
			}
			r.wantEnvsEqual(t, envs)
			if info, held, err := b.BreakLock(t.Context()); err != nil || !held || info.Holder != tc.holder.Holder {
				t.Fatalf("BreakLock: %v %v %+v", err, held, info)
			}
			if _, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{}); err != nil {
				t.Errorf("after --break-lock: %v", err)
			}
		})
	}
}

func TestEngineTwoOperatorsAtOnce(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.engine().Rotate(t.Context(), journal.ModeMaintenance, rotate.RotateOptions{})
		}()
	}
	wg.Wait()
	succeeded := 0
	for _, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case !errors.Is(err, rotate.ErrLocked):
			t.Errorf("an operator got %v; want success or ErrLocked", err)
		}
	}
	if succeeded == 0 {
		t.Error("neither operator rotated")
	}
	if st := r.status(t); !st.Drift.Consistent || st.Unfinished() {
		t.Errorf("two operators left the fleet drifted or unfinished: %s, phase %s", st.Drift, st.Journal.Phase)
	}
}
