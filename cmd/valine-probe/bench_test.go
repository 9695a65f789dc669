package main

import (
	"context"
	"io"
	"testing"
)

// BenchmarkInitialise measures the function's init in-process: reading the
// configuration, loading the AWS configuration (static credentials from
// the environment, as Lambda provides them) and building the clients.
// deploy/build's BenchmarkColdStart measures the whole process start.
//
//	go test -run '^$' -bench Initialise -benchmem -count 5 ./cmd/valine-probe
func BenchmarkInitialise(b *testing.B) {
	for k, v := range map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example",
		"AWS_SESSION_TOKEN": "example", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		b.Setenv(k, v)
	}
	m := validEnv()
	m[envBackupSecret] = "valine-check/pv-api-prod-"
	getenv := env(m)
	for b.Loop() {
		if _, err := initialise(context.Background(), getenv, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
