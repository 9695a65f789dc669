// Package emfspec checks log events against the CloudWatch embedded metric
// format specification. Only tests import it: the tests of every EMF writer
// (probes/report, the scheduled probe, the CLI, the deploy build) judge
// their output with it.
package emfspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// emfUnits are the units CloudWatch accepts (StandardUnit).
var emfUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true, "Megabits": true,
	"Gigabits": true, "Terabits": true, "Percent": true, "Count": true, "Bytes/Second": true,
	"Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true, "Terabytes/Second": true,
	"Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true, "Gigabits/Second": true,
	"Terabits/Second": true, "Count/Second": true, "None": true,
}

// Validate checks one log event against the CloudWatch embedded
// metric format specification
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
// the event is a JSON object with nothing before or after it; "_aws" is an
// object with an integer Timestamp (milliseconds since the epoch) and a
// CloudWatchMetrics array of metric directives; a directive has a Namespace
// (1-255 characters), Dimensions (an array of dimension sets, each an
// array of at most 30 strings) and Metrics (at most 100 definitions, each
// with a Name of 1-255 characters, an optional valid Unit and an optional
// StorageResolution of 1 or 60); every dimension key is a root member
// holding a string of 1-1024 characters; every metric is a root member
// holding a number or an array of at most 100 numbers. The tests of the
// EMF writers (here, the scheduled probe and the CLI) judge their output
// with it.
func Validate(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(line, " \n\r\t"))) {
		return errors.New("data after the JSON object")
	}
	meta, ok := root["_aws"].(map[string]any)
	if !ok {
		return errors.New(`"_aws" is missing or not an object`)
	}
	ts, ok := meta["Timestamp"].(json.Number)
	if !ok {
		return errors.New("_aws.Timestamp is missing or not a number")
	}
	ms, err := ts.Int64()
	if err != nil {
		return fmt.Errorf("_aws.Timestamp %s is not an integer", ts)
	}
	// Milliseconds, not seconds or nanoseconds: between 2001 and 2286.
	if ms < 1e12 || ms > 1e13 {
		return fmt.Errorf("_aws.Timestamp %d is not milliseconds since the epoch", ms)
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok {
		return errors.New("_aws.CloudWatchMetrics is missing or not an array")
	}
	for i, d := range directives {
		dir, ok := d.(map[string]any)
		if !ok {
			return fmt.Errorf("directive %d is not an object", i)
		}
		ns, ok := dir["Namespace"].(string)
		if !ok || len(ns) < 1 || len(ns) > 255 {
			return fmt.Errorf("directive %d: Namespace missing, not a string or not 1-255 characters", i)
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok {
			return fmt.Errorf("directive %d: Dimensions is missing or not an array", i)
		}
		for j, s := range sets {
			keys, ok := s.([]any)
			if !ok {
				return fmt.Errorf("directive %d: dimension set %d is not an array", i, j)
			}
			if len(keys) > 30 {
				return fmt.Errorf("directive %d: dimension set %d has %d keys, more than 30", i, j, len(keys))
			}
			for _, k := range keys {
				key, ok := k.(string)
				if !ok {
					return fmt.Errorf("directive %d: dimension key %v is not a string", i, k)
				}
				v, ok := root[key].(string)
				if !ok {
					return fmt.Errorf("dimension %q is not a root member holding a string", key)
				}
				if len(v) < 1 || len(v) > 1024 {
					return fmt.Errorf("dimension %q value is not 1-1024 characters", key)
				}
			}
		}
		metrics, ok := dir["Metrics"].([]any)
		if !ok {
			return fmt.Errorf("directive %d: Metrics is missing or not an array", i)
		}
		if len(metrics) > 100 {
			return fmt.Errorf("directive %d has %d metrics, more than 100", i, len(metrics))
		}
		for _, m := range metrics {
			def, ok := m.(map[string]any)
			if !ok {
				return fmt.Errorf("directive %d: a metric definition is not an object", i)
			}
			name, ok := def["Name"].(string)
			if !ok || len(name) < 1 || len(name) > 255 {
				return fmt.Errorf("directive %d: a metric Name is missing or not 1-255 characters", i)
			}
			if u, present := def["Unit"]; present {
				if s, ok := u.(string); !ok || !emfUnits[s] {
					return fmt.Errorf("metric %s: unit %v is not a CloudWatch unit", name, u)
				}
			}
			if r, present := def["StorageResolution"]; present {
				if n, ok := r.(json.Number); !ok || (n.String() != "1" && n.String() != "60") {
					return fmt.Errorf("metric %s: StorageResolution %v is not 1 or 60", name, r)
				}
			}
			switch v := root[name].(type) {
			case json.Number:
			case []any:
				if len(v) > 100 {
					return fmt.Errorf("metric %s has %d values, more than 100", name, len(v))
				}
				for _, x := range v {
					if _, ok := x.(json.Number); !ok {
						return fmt.Errorf("metric %s: value %v is not a number", name, x)
					}
				}
			default:
				return fmt.Errorf("metric %s is not a root member holding a number", name)
			}
		}
	}
	return nil
}
