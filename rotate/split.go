package rotate

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/valine/valine-check/internal/journal"
)

// Split is how long one fleet update left the fleet split: from the first
// function serving the new secrets to the last. While it lasts, a token
// signed by a function already switched is refused by one that is not
// (and the reverse), and in an emergency the leaked secret still works on
// the functions not yet switched: it is what users feel of a rotation.
//
// A function serves its new environment once its update has finished
// (LastUpdateStatus Successful); the times are when the waiter saw that,
// so each is late by at most one poll (EnvUpdate.PollMax).
type Split struct {
	// Phase is the journal phase whose secrets the update put ("" for
	// preflight's throwaway secondary).
	Phase journal.Phase
	// Functions counts the functions the update changed.
	Functions int
	// First and Last are when the first and the last of them were seen
	// serving the new secrets, and which functions they were.
	First, Last                 time.Time
	FirstFunction, LastFunction string
}

// Duration is how long the fleet was split.
func (s Split) Duration() time.Duration { return s.Last.Sub(s.First) }

// String says it in one line: "fleet split for 6.41 s while 77 functions
// switched (pv-auth first at 12:00:01.234, pv-users last at 12:00:07.644)".
func (s Split) String() string {
	if s.Functions == 1 {
		return fmt.Sprintf("fleet never split: 1 function switched (%s, at %s)", s.FirstFunction, s.First.UTC().Format(splitClock))
	}
	return fmt.Sprintf("fleet split for %.2f s while %d functions switched (%s first at %s, %s last at %s)",
		s.Duration().Seconds(), s.Functions, s.FirstFunction, s.First.UTC().Format(splitClock), s.LastFunction, s.Last.UTC().Format(splitClock))
}

const splitClock = "15:04:05.000"

// MarshalJSON gives the window with its length in seconds, for the audit
// and for --output json.
func (s Split) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Phase         journal.Phase `json:"phase,omitempty"`
		Functions     int           `json:"functions"`
		Seconds       float64       `json:"seconds"`
		First         time.Time     `json:"first"`
		Last          time.Time     `json:"last"`
		FirstFunction string        `json:"firstFunction"`
		LastFunction  string        `json:"lastFunction"`
	}{s.Phase, s.Functions, s.Duration().Seconds(), s.First, s.Last, s.FirstFunction, s.LastFunction})
}

// splitOf is the split window of one fleet update: results[i] is
// order[i]'s. It is nil when the update changed no function.
func splitOf(phase journal.Phase, order []string, results []EnvResult) *Split {
	var s *Split
	for i, r := range results {
		if !r.Changed || r.Settled.IsZero() {
			continue
		}
		if s == nil {
			s = &Split{Phase: phase, First: r.Settled, Last: r.Settled, FirstFunction: order[i], LastFunction: order[i]}
		}
		s.Functions++
		if r.Settled.Before(s.First) {
			s.First, s.FirstFunction = r.Settled, order[i]
		}
		if r.Settled.After(s.Last) {
			s.Last, s.LastFunction = r.Settled, order[i]
		}
	}
	return s
}

// SwitchOrder is the order in which an update switches the fleet: the
// functions of first that are in the fleet, in first's order, then the
// others in fleet order. The token issuers go first: once they sign with
// the new secret, every login and refresh hands out a token that works
// everywhere as soon as the split ends, instead of one signed with the
// secret being replaced, which the end of the split would turn away; in
// an emergency, the leaked secret stops being used to sign first.
func SwitchOrder(fleet, first []string) []string {
	order := make([]string, 0, len(fleet))
	for _, f := range first {
		if slices.Contains(fleet, f) && !slices.Contains(order, f) {
			order = append(order, f)
		}
	}
	for _, f := range fleet {
		if !slices.Contains(order, f) {
			order = append(order, f)
		}
	}
	return order
}

// DefaultSwitchFirst guesses a fleet's token issuers from their names: the
// functions whose name contains "auth" (any case), as the Valine stack
// names its login, refresh and other auth handlers. It is a guess by name;
// Engine.SwitchFirst (--switch-first) says it exactly.
func DefaultSwitchFirst(fleet []string) []string {
	var first []string
	for _, f := range fleet {
		if strings.Contains(strings.ToLower(f), "auth") {
			first = append(first, f)
		}
	}
	return first
}

// switchFirst is SwitchFirst, or DefaultSwitchFirst's guess when unset.
func (e *Engine) switchFirst() []string {
	if e.SwitchFirst != nil {
		return e.SwitchFirst
	}
	return DefaultSwitchFirst(e.Fleet)
}
