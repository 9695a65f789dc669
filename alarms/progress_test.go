package alarms_test

import (
	"sync"
	"testing"
	"time"

	"github.com/valine/valine-check/alarms"
)

// toldLines is a progress.Func that keeps what it was told.
type toldLines struct {
	mu    sync.Mutex
	lines []string
}

func (t *toldLines) tell(what string, _ time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, what)
}

func (t *toldLines) told() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// A query that runs longer than a second is told once, however often it
// is polled; a snapshot's queries are told as one wait; a quick query is
// not told at all.
func TestRunnerTellsLongQueries(t *testing.T) {
	t.Parallel()
	start, end := lastHour()
	q := alarms.Query{Name: "jwt-failures", String: "fields @message"}
	slow := func() *blockingAPI {
		api := &blockingAPI{release: make(chan struct{})}
		time.AfterFunc(1300*time.Millisecond, func() { close(api.release) })
		return api
	}
	for _, tc := range []struct {
		name string
		run  func(r *alarms.Runner) error
		api  func() *blockingAPI // made when the subtest runs, so its clock starts then
		want []string
	}{
		{"slow query", func(r *alarms.Runner) error {
			_, err := r.Run(t.Context(), q, []string{"/aws/lambda/pv-auth"}, start, end)
			return err
		}, slow, []string{"Logs Insights query jwt-failures"}},
		{"slow snapshot", func(r *alarms.Runner) error {
			_, err := alarms.TakeSnapshot(t.Context(), r, []alarms.Query{q, {Name: "errors", String: "fields @message"}}, []string{"/aws/lambda/pv-auth"}, start, end, nil)
			return err
		}, slow, []string{"2 Logs Insights queries over 1 log group(s)"}},
		{"quick query", func(r *alarms.Runner) error {
			_, err := r.Run(t.Context(), q, []string{"/aws/lambda/pv-auth"}, start, end)
			return err
		}, func() *blockingAPI { return &blockingAPI{} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var told toldLines
			r := &alarms.Runner{Logs: tc.api(), Progress: told.tell}
			if err := tc.run(r); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			if got := told.told(); len(got) != len(tc.want) || (len(got) == 1 && got[0] != tc.want[0]) {
				t.Errorf("told %q, want %q", got, tc.want)
			}
		})
	}
}
