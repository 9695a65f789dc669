package testbed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valine/valine-check/internal/profile"
)

// API is the running Valine auth API and its controls. With the reference
// backend (the default) it serves the World's Profile: login, profile and
// refresh endpoints, HS256 tokens, dual-secret verification read from the
// emulated Lambda function, and one CloudWatch Logs line per verification.
// With Options.Backend = BackendValine it reproduces the real backend
// instead (see the package documentation); the controls work on both.
type API struct {
	profile               profile.Profile
	secrets               secretGetter    // the reference backend's secrets
	valine                *valineRuntime  // nil with the reference backend
	runtime               *runtimeSecrets // Options.RuntimeSecrets; nil = from the function's environment
	busy                  busyGate
	logs                  *logWriter
	users                 *userStore
	accessTTL, refreshTTL time.Duration
	log                   *slog.Logger

	misbehaviours atomic.Uint64
	latency       atomic.Int64
	requests      atomic.Int64

	mu        sync.Mutex // guards addr, srv and listenErr
	addr      string
	srv       *http.Server
	listenErr error
}

// listen binds a new port, serving unless Down is set.
func (a *API) listen() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening for the valine api: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addr = ln.Addr().String()
	if a.Misbehaviours()&Down != 0 {
		return ln.Close()
	}
	a.serveLocked(ln)
	return nil
}

// serveLocked serves on ln with a new http.Server.
func (a *API) serveLocked(ln net.Listener) {
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	a.srv = srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("valine api stopped serving", "err", err)
		}
	}()
}

// URL is the API's base URL; it stays the same across Down and back.
func (a *API) URL() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return "http://" + a.addr
}

// SetMisbehaviours replaces the API's misbehaviours at run time. Setting
// Down closes the listener and every open connection (clients then get
// connection refused); clearing it listens again on the same port. If the
// port cannot be bound again within a few seconds the API stays down and
// Err reports why.
func (a *API) SetMisbehaviours(m Misbehaviour) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.misbehaviours.Store(uint64(m))
	switch {
	case m&Down != 0 && a.srv != nil:
		_ = a.srv.Close()
		a.srv = nil
	case m&Down == 0 && a.srv == nil && a.addr != "":
		ln, err := listenRetry(a.addr, 3*time.Second)
		a.listenErr = err
		if err == nil {
			a.serveLocked(ln)
		}
	}
}

// listenRetry binds addr, retrying until timeout: the port was ours a moment
// ago and is normally free again at once.
func listenRetry(addr string, timeout time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(timeout)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("listening again on %s: %w", addr, err)
			}
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Err reports why the API could not listen again after Down was cleared,
// nil if it is fine.
func (a *API) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.listenErr
}

// Misbehaviours returns the current misbehaviours.
func (a *API) Misbehaviours() Misbehaviour { return Misbehaviour(a.misbehaviours.Load()) }

// SetLatency delays every request by d before it is served (0 = none).
func (a *API) SetLatency(d time.Duration) { a.latency.Store(int64(d)) }

// Requests returns how many requests the API has received.
func (a *API) Requests() int64 { return a.requests.Load() }

// AddUser creates an account the API accepts at login and returns its id.
func (a *API) AddUser(email, password string) string { return a.users.add(email, password).id }

// close stops serving for good.
func (a *API) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		_ = a.srv.Close()
		a.srv = nil
	}
}

// ServeHTTP counts the request, waits the injected latency and routes it.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	if !sleepCtx(r.Context(), time.Duration(a.latency.Load())) {
		return
	}
	if a.Misbehaviours()&ServerBusy != 0 {
		writeBusy(w, 1)
		return
	}
	if a.valine != nil {
		a.serveValine(w, r)
		return
	}
	p := a.profile
	route := func(path, method string, h http.HandlerFunc) bool {
		if r.URL.Path != path {
			return false
		}
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "Method Not Allowed", "statusCode": http.StatusMethodNotAllowed})
			return true
		}
		h(w, r)
		return true
	}
	switch {
	case route(p.LoginPath, http.MethodPost, a.login):
	case route(p.ProfilePath, http.MethodGet, a.profileMe):
	case route(p.RefreshPath, http.MethodPost, a.refresh):
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Not Found", "statusCode": http.StatusNotFound})
	}
}
