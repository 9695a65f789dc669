// Command valine-probe is the scheduled probe: an AWS Lambda function
// (provided.al2023, arm64 or amd64, built by `go run ./deploy/build`)
// that an EventBridge schedule invokes every few minutes. Each invocation
// runs the same checks as `valine-check probe` (package proberun) and
// prints CloudWatch Embedded Metric Format lines (SuccessPercent and
// Duration per check and overall) and one JSON report line. See
// deploy/template.yaml and the README's "Scheduled probe" section.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

func main() {
	d, err := initialise(context.Background(), os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		// An init failure is a deployment error: Lambda reports it, the
		// metrics stop, and the SuccessPercent alarm (missing data is
		// breaching) fires.
		fmt.Fprintf(os.Stderr, "valine-probe: %v\n", err)
		os.Exit(1)
	}
	lambda.Start(newHandler(d))
}

// initialise is the function's init: read the configuration, load the AWS
// configuration (the execution role's credentials, the region) and build
// the clients, once per process.
func initialise(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) (deps, error) {
	c, err := configFromEnv(getenv)
	if err != nil {
		return deps{}, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return deps{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return newDeps(c, awsCfg, stdout, stderr), nil
}
