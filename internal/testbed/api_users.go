package testbed

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"sync"

	"github.com/valine/valine-check/internal/profile"
)

// user is an account of the Valine API.
type user struct {
	id, email, password string
}

// userStore holds the API's accounts, by email.
type userStore struct {
	mu    sync.Mutex
	users map[string]user
}

// newUserStore returns an empty store.
func newUserStore() *userStore { return &userStore{users: map[string]user{}} }

// add creates (or replaces) the account for email and returns it.
func (s *userStore) add(email, password string) user {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := user{id: "usr_" + randomHex(8), email: email, password: password}
	s.users[email] = u
	return u
}

// check returns the account if the credentials match.
func (s *userStore) check(email, password string) (user, bool) {
	s.mu.Lock()
	u, ok := s.users[email]
	s.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(u.password), []byte(password)) != 1 {
		return user{}, false
	}
	return u, true
}

// SimulateUsers makes n ordinary users each log in and fetch their profile,
// the way a browser or app would with the World's Profile, so the log group
// holds successful verification lines. Each user is a fresh account. A login
// answered 503 (the busy schedule, see BusyOptions) is tried again at once,
// up to three attempts; under ServerBusy it fails.
func (w *World) SimulateUsers(ctx context.Context, n int) error {
	for i := range n {
		email := fmt.Sprintf("user-%s@valine.test", randomHex(4))
		password := "pw-" + randomHex(8)
		w.API.AddUser(email, password)
		if err := w.simulateUser(ctx, email, password); err != nil {
			return fmt.Errorf("simulated user %d: %w", i+1, err)
		}
	}
	return nil
}

// simulateUser logs one user in and fetches the profile with the token in
// the profile's access transport.
func (w *World) simulateUser(ctx context.Context, email, password string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return fmt.Errorf("cookie jar: %w", err)
	}
	client := &http.Client{Jar: jar}
	p := w.Profile
	login, err := json.Marshal(map[string]string{p.EmailField: email, p.PasswordField: password})
	if err != nil {
		return fmt.Errorf("encoding login: %w", err)
	}
	var tokens map[string]any
	// A user whose login meets SERVER_BUSY tries again at once, as an app
	// would; the busy schedule makes the next attempt go through.
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.APIURL+p.LoginPath, bytes.NewReader(login))
		if err != nil {
			return fmt.Errorf("building login: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		err = do(client, req, &tokens)
		var se *statusError
		if errors.As(err, &se) && se.status == http.StatusServiceUnavailable && attempt < 3 {
			continue
		}
		if err != nil {
			return fmt.Errorf("login: %w", err)
		}
		break
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.APIURL+p.ProfilePath, nil)
	if err != nil {
		return fmt.Errorf("building profile request: %w", err)
	}
	if p.AccessTransport == profile.TransportBearer {
		access, _ := tokens[p.AccessField].(string)
		req.Header.Set("Authorization", "Bearer "+access)
	}
	if err := do(client, req, nil); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// do sends req, requires 200 and decodes the JSON body into out when set.
func do(c *http.Client, req *http.Request, out any) error {
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{method: req.Method, path: req.URL.Path, status: resp.StatusCode}
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("decoding %s: %w", req.URL.Path, err)
		}
	}
	return nil
}

// statusError is a simulated user's answer other than 200.
type statusError struct {
	method, path string
	status       int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d", e.method, e.path, e.status)
}
