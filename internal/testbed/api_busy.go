package testbed

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// BusyOptions makes the Valine API's login answer 503
// {"error":"SERVER_BUSY","retryAfter":RetryAfterSeconds} with a Retry-After
// header, the way the real backend does when its bcrypt step runs past its
// timeout. It is deterministic so that tests can count on it: every
// Every-th login attempt that reaches the password check is busy, whatever
// its credentials (a rate-limited or unreadable attempt does not count).
type BusyOptions struct {
	// Every makes every Every-th login attempt answer 503; 0 = never.
	Every int
	// RetryAfterSeconds is the answer's retryAfter field and Retry-After
	// header; 0 = 3, the real backend's value.
	RetryAfterSeconds int
}

// defaultRetryAfter is the real backend's retryAfter at login.
const defaultRetryAfter = 3

// valineBusyEvery is how often login is busy in valine mode by default: the
// real backend does it now and then on a busy machine, and a client must
// cope with it.
const valineBusyEvery = 15

// busyDefaults resolves Options.Busy: a copy, nil filled in for the backend,
// negative values refused.
func busyDefaults(b *BusyOptions, valine bool) (*BusyOptions, error) {
	var out BusyOptions
	switch {
	case b != nil:
		out = *b
	case valine:
		out = BusyOptions{Every: valineBusyEvery, RetryAfterSeconds: defaultRetryAfter}
	}
	if out.Every < 0 || out.RetryAfterSeconds < 0 {
		return nil, fmt.Errorf("testbed options: Busy needs Every and RetryAfterSeconds of 0 or more, got %d and %d", out.Every, out.RetryAfterSeconds)
	}
	if out.RetryAfterSeconds == 0 {
		out.RetryAfterSeconds = defaultRetryAfter
	}
	return &out, nil
}

// busyGate counts login attempts and says which are busy.
type busyGate struct {
	mu         sync.Mutex
	every      int
	retryAfter int
	count      int
}

// set replaces the schedule and restarts the count.
func (b *busyGate) set(every, retryAfter int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.every, b.retryAfter, b.count = max(every, 0), retryAfter, 0
	if b.retryAfter <= 0 {
		b.retryAfter = defaultRetryAfter
	}
}

// next counts one login attempt and reports whether it is busy, and the
// retryAfter to answer with.
func (b *busyGate) next() (retryAfter int, busy bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.every == 0 {
		return 0, false
	}
	b.count++
	return b.retryAfter, b.count%b.every == 0
}

// SetBusy replaces the login's busy schedule at run time, in either backend,
// and restarts its count: after SetBusy(n, s) the n-th login attempt, and
// every n-th after it, answers 503 {"error":"SERVER_BUSY","retryAfter":s}
// with Retry-After: s. every <= 0 means never; retryAfterSeconds <= 0 means
// 3, as in BusyOptions.
func (a *API) SetBusy(every, retryAfterSeconds int) { a.busy.set(every, retryAfterSeconds) }

// busyBody is the SERVER_BUSY answer's body.
func busyBody(retryAfter int) map[string]any {
	return map[string]any{"error": "SERVER_BUSY", "retryAfter": retryAfter}
}

// writeBusy answers 503 SERVER_BUSY with a Retry-After header.
func writeBusy(w http.ResponseWriter, retryAfter int) {
	writeBusyHeader(w, retryAfter)
	writeJSON(w, http.StatusServiceUnavailable, busyBody(retryAfter))
}

// writeBusyHeader sets the Retry-After header of a SERVER_BUSY answer.
func writeBusyHeader(w http.ResponseWriter, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
}
