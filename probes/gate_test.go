package probes

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/golang-jwt/jwt/v5"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

// The gate sorts a run after a change: a rotation check's failure counts;
// a battery finding counts only if the baseline passed; a finding the
// baseline had is pre-existing; log failures and findings the baseline
// could not judge are reported, not counted; an error is "could not tell".
func TestJudge(t *testing.T) {
	res := func(name string, o Outcome) Result { return Result{Name: name, Outcome: o} }
	base := Baseline{"security-hs384-hs512": Fail, "security-no-exp": Fail, "security-alg-none": Pass, "security-expired": Error}
	tests := []struct {
		name                                   string
		results                                []Result
		caused, pending, preExisting, findings []string
		verdict                                Outcome
	}{
		{name: "pre-existing findings do not count",
			results:     []Result{res("login", Pass), res("security-hs384-hs512", Fail), res("security-no-exp", Fail), res("security-alg-none", Pass)},
			preExisting: []string{"security-hs384-hs512", "security-no-exp"}, verdict: Pass},
		{name: "a finding the change introduced counts",
			results: []Result{res("security-alg-none", Fail), res("security-hs384-hs512", Fail)},
			caused:  []string{"security-alg-none"}, preExisting: []string{"security-hs384-hs512"}, verdict: Fail},
		{name: "a rotation check's failure counts",
			results: []Result{res("old-token-rejected", Fail), res("refresh", Pass)},
			caused:  []string{"old-token-rejected"}, verdict: Fail},
		{name: "a check outside the catalog is a rotation check",
			results: []Result{res("secret-honoured", Fail)}, caused: []string{"secret-honoured"}, verdict: Fail},
		{name: "errors are could-not-tell, never a no",
			results: []Result{res("refresh", Error), res("no-log-errors", Error), res("security-hs384-hs512", Fail)},
			pending: []string{"refresh", "no-log-errors"}, preExisting: []string{"security-hs384-hs512"}, verdict: Error},
		{name: "a failure outranks could-not-tell",
			results: []Result{res("refresh", Error), res("login", Fail)},
			caused:  []string{"login"}, pending: []string{"refresh"}, verdict: Fail},
		{name: "log failures and unjudged findings are reported, not counted",
			results:  []Result{res("no-log-errors", Fail), res("security-expired", Fail), res("security-empty-key", Fail)},
			findings: []string{"no-log-errors", "security-expired", "security-empty-key"}, verdict: Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Report{Results: tt.results, Summary: summarize(tt.results)}
			j := rep.JudgeAgainst(base)
			for _, c := range []struct {
				kind      string
				got, want []string
			}{{"caused", names(j.Caused), tt.caused}, {"pending", names(j.Pending), tt.pending},
				{"pre-existing", names(j.PreExisting), tt.preExisting}, {"findings", names(j.Findings), tt.findings}} {
				if strings.Join(c.got, ",") != strings.Join(c.want, ",") {
					t.Errorf("%s: got %q, want %q", c.kind, c.got, c.want)
				}
			}
			if j.Verdict() != tt.verdict || rep.Status() != tt.verdict || rep.Gate == nil || rep.Gate.Verdict != tt.verdict {
				t.Errorf("verdict %s, report status %s, gate %+v; want %s", j.Verdict(), rep.Status(), rep.Gate, tt.verdict)
			}
			for _, r := range rep.Results {
				if want := contains(tt.preExisting, r.Name); r.PreExisting != want {
					t.Errorf("%s: PreExisting %v, want %v", r.Name, r.PreExisting, want)
				}
				if o, ok := base[r.Name]; ok && r.Baseline != o {
					t.Errorf("%s: Baseline %q, want %q", r.Name, r.Baseline, o)
				}
			}
		})
	}
	// No baseline at all judges strictly, as after-rotation does.
	strict := Judge(nil, Report{Results: []Result{res("security-hs384-hs512", Fail), res("no-log-errors", Fail)}})
	if len(strict.Caused) != 2 {
		t.Errorf("without a baseline every failure counts: %+v", strict)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// The baseline runs login, new-token-valid, refresh and the whole battery
// (with new-secret-in-use, which the attacks signed with the current secret
// need), and keeps only the battery's verdicts.
func TestBaselineChecks(t *testing.T) {
	var got []string
	for _, c := range BaselineChecks() {
		got = append(got, c.Name)
	}
	want := "login,new-token-valid,new-secret-in-use,refresh,security-alg-none,security-hs384-hs512,security-expired,security-no-exp,security-tampered-signature,security-empty-key,security-refresh-as-access"
	if strings.Join(got, ",") != want {
		t.Errorf("baseline checks %s, want %s", strings.Join(got, ","), want)
	}
	b := BaselineOf(Report{Results: []Result{{Name: "login", Outcome: Pass}, {Name: "security-no-exp", Outcome: Fail}, {Name: "security-alg-none", Outcome: Pass}}})
	if len(b) != 2 || b["security-no-exp"] != Fail || strings.Join(b.Findings(), ",") != "security-no-exp" {
		t.Errorf("BaselineOf = %v, findings %v", b, b.Findings())
	}
}

// A 503 or 429 answer is could-not-tell: the runner retries it within the
// check's deadline, waiting what the API asked for (a Retry-After header or
// a retryAfter body field), and a check that still gets one errs, never fails.
func TestUnavailableIsRetriedThenAnError(t *testing.T) {
	var calls atomic.Int32
	var busyUntil atomic.Int32
	var lastGap atomic.Int64
	var last atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		if prev := last.Swap(now); prev != 0 {
			lastGap.Store(now - prev)
		}
		n := calls.Add(1)
		if n <= busyUntil.Load() {
			if r.URL.Query().Get("header") != "" || n%2 == 0 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"error":"Too many requests"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"SERVER_BUSY","retryAfter":0.15}`))
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "x", Value: "y"})
		_, _ = w.Write([]byte(`{"accessToken":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln","refreshToken":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"}`))
	}))
	defer srv.Close()
	target := Target{API: &Client{BaseURL: srv.URL, Profile: profile.Presets["runbook"]}}
	cfg := Config{ProbeEmail: "p@x", ProbePassword: secret.NewSecret("pw")}
	login, _ := CatalogCheck("login")
	runner := Runner{CheckTimeout: 2 * time.Second, RetryInterval: 10 * time.Millisecond}

	busyUntil.Store(1)
	rep := runner.Run(context.Background(), []Check{login}, target, cfg)
	r, _ := rep.Result("login")
	if r.Outcome != Pass || r.Attempts != 2 {
		t.Fatalf("login after one 503: %s after %d attempts (%s)", r.Outcome, r.Attempts, r.Reason)
	}
	if gap := time.Duration(lastGap.Load()); gap < 150*time.Millisecond {
		t.Errorf("retried after %s; the API asked for retryAfter 0.15 s", gap)
	}

	calls.Store(0)
	busyUntil.Store(1 << 30)
	runner.CheckTimeout = 400 * time.Millisecond
	rep = runner.Run(context.Background(), []Check{login}, target, cfg)
	r, _ = rep.Result("login")
	if r.Outcome != Error || r.Attempts < 2 || !strings.Contains(r.Reason, "still unavailable") || r.Duration > 2*time.Second {
		t.Errorf("login against a busy API: %s after %d attempts in %s (%s); want an error within the check's deadline", r.Outcome, r.Attempts, r.Duration, r.Reason)
	}
	if rep.Status() != Error {
		t.Errorf("status %s, want error", rep.Status())
	}
}

// The dual-secret proof concludes "does not honour" only from the API's
// rejection of the secondary-signed token; anything else is could-not-tell.
func TestSecretHonouredOnlyARejectionIsANo(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   Outcome
	}{{200, Pass}, {401, Fail}, {404, Error}, {503, Error}, {429, Error}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) }))
		target := Target{API: &Client{BaseURL: srv.URL, Profile: profile.Presets["runbook"]}, Session: &Session{Access: mustForge(t)}}
		got := SecretHonoured(secret.NewSecret(strings.Repeat("k", 44)))(context.Background(), target, Config{}, slog.New(slog.DiscardHandler))
		srv.Close()
		if got.Outcome != tc.want {
			t.Errorf("HTTP %d: %s (%s), want %s", tc.status, got.Outcome, got.Reason, tc.want)
		}
	}
}

func mustForge(t *testing.T) secret.Token {
	t.Helper()
	tok, err := Forge(map[string]any{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}, jwt.SigningMethodHS256, secret.NewSecret(strings.Repeat("s", 44)))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fakeLogs serves FilterLogEvents from pages, as AWS does: some pages are
// empty but carry a NextToken, and only the last has none.
type fakeLogs struct {
	pages [][]cwltypes.FilteredLogEvent
	calls int
}

func (f *fakeLogs) FilterLogEvents(_ context.Context, in *cloudwatchlogs.FilterLogEventsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error) {
	f.calls++
	i := 0
	if in.NextToken != nil {
		i = int(aws.ToString(in.NextToken)[0] - '0')
	}
	out := &cloudwatchlogs.FilterLogEventsOutput{}
	for _, e := range f.pages[i] {
		if strings.Contains(aws.ToString(e.Message), aws.ToString(in.FilterPattern)) {
			out.Events = append(out.Events, e)
		}
	}
	if i+1 < len(f.pages) {
		out.NextToken = aws.String(string(rune('0' + i + 1)))
	}
	return out, nil
}

// On a backend that logs no User-Agent (the real Valine backend), the log
// check leaves out the probe's own refusals by time: each deliberate
// request accounts for one failure line stamped while it was in flight,
// and no more. It reads every page, empty ones included.
func TestNoLogErrorsLeavesOutDeliberateRefusalsByTime(t *testing.T) {
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	at := func(d time.Duration) *int64 { return aws.Int64(base.Add(d).UnixMilli()) }
	line := func(d time.Duration, msg string) cwltypes.FilteredLogEvent {
		return cwltypes.FilteredLogEvent{Timestamp: at(d), Message: aws.String(msg)}
	}
	warn := `WARN {"event":"me_no_token","hasAuthHeader":false,"hasCookie":true}`
	info := `INFO {"event":"me_token_found","source":"cookie"}`
	logs := &fakeLogs{pages: [][]cwltypes.FilteredLogEvent{
		{}, // AWS answers empty pages while it scans
		{line(0, info), line(10*time.Millisecond, warn)},
		{},
		{line(20*time.Second, info), line(20*time.Second, warn), line(20*time.Second+5*time.Millisecond, warn)},
	}}
	d := &DeliberateLog{}
	d.Record(base.Add(-5*time.Millisecond), base.Add(30*time.Millisecond))
	d.Record(base.Add(20*time.Second-time.Millisecond), base.Add(20*time.Second+2*time.Millisecond))
	target := Target{API: &Client{Profile: profile.Presets["valine"]}, Function: "fn", Logs: logs, Deliberate: d}
	cfg := Config{ProbePassword: secret.NewSecret("pw"), LogsSince: base.Add(-time.Second), LogsUntil: base.Add(30 * time.Second)}
	got := NoLogErrors(context.Background(), target, cfg, slog.New(slog.DiscardHandler))
	if got.Outcome != Fail || got.Details["failures"] != 1 || got.Details["probeRejectionsIgnored"] != 2 {
		t.Errorf("%s: %s %v; want 1 failure counted (three refusals, two of them the probe's)", got.Outcome, got.Reason, got.Details)
	}

	// Only the probe's own refusals: a pass that says so.
	d.Record(base.Add(20*time.Second+4*time.Millisecond), base.Add(20*time.Second+6*time.Millisecond))
	got = NoLogErrors(context.Background(), target, cfg, slog.New(slog.DiscardHandler))
	if got.Outcome != Pass || !strings.Contains(got.Reason, "3 deliberate rejections by the probe not counted") {
		t.Errorf("%s: %s", got.Outcome, got.Reason)
	}
	if logs.calls < 2*len(logs.pages)-1 {
		t.Errorf("%d FilterLogEvents calls: the pages were not all read", logs.calls)
	}
}

// The marker of the probe's deliberate requests is drawn at random for
// each run: nothing in the logs is derived from the probe password (an
// HMAC of it would let a log reader test password guesses offline).
func TestDeliberateMarkerIsRandomPerRun(t *testing.T) {
	var uas []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uas = append(uas, r.UserAgent())
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	target := Target{API: &Client{BaseURL: srv.URL, Profile: profile.Presets["runbook"]}, Session: &Session{Access: mustForge(t)}}
	cfg := Config{ProbePassword: secret.NewSecret("the same password")}
	for range 2 {
		target.Deliberate = &DeliberateLog{} // a new run
		_ = AlgNone(context.Background(), target, cfg, slog.New(slog.DiscardHandler))
	}
	if len(uas) != 2 || uas[0] == uas[1] {
		t.Fatalf("two runs with the same password sent User-Agents %q: the marker must be drawn per run", uas)
	}
	for _, ua := range uas {
		if !strings.HasPrefix(ua, DeliberatePrefix) || len(ua) != len(DeliberatePrefix)+16 {
			t.Errorf("User-Agent %q is not %s and 16 hex digits", ua, DeliberatePrefix)
		}
	}
	var nilLog *DeliberateLog
	if nilLog.Marker() != "" {
		t.Error("a nil log has a marker")
	}
}
