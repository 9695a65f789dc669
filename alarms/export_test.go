package alarms

import "time"

// Bins exposes a result's per-bin counts to the black-box tests only.
func Bins(r Result, field string) map[time.Time]float64 { return r.bins(field) }
