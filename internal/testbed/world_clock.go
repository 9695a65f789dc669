package testbed

import "time"

// NextLogMillisecond waits for the wall clock to enter a new millisecond and
// returns that instant. CloudWatch Logs stamps events in whole milliseconds,
// and the local world runs steps so fast that the last lines of one step and
// the first of the next can share a millisecond, landing in the wrong log
// window (probes' log check counts [ceil(since), floor(until)-1ms]). Callers
// take a window bound with it; on a real deployment steps are seconds apart.
func NextLogMillisecond() time.Time {
	t := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
	time.Sleep(time.Until(t))
	return t
}
