package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// defaultAWSMaxAttempts is how often an AWS call is tried (throttling and
// 5xx are retried with backoff).
const defaultAWSMaxAttempts = 8

// awsClients are the AWS clients a fleet command uses.
type awsClients struct {
	lambda  *lambda.Client
	secrets *secretsmanager.Client
	sts     *sts.Client
	logs    *cloudwatchlogs.Client
	cw      *cloudwatch.Client
	ssm     *ssm.Client
	cfn     *cloudformation.Client
}

// loadAWS reads the standard AWS configuration (profiles, region,
// AWS_ENDPOINT_URL) with a retryer that backs off on throttling and 5xx.
func loadAWS(ctx context.Context, maxAttempts int) (awsClients, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = 20 * time.Second
		})
	}))
	if err != nil {
		return awsClients{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return awsClients{
		lambda:  lambda.NewFromConfig(cfg),
		secrets: secretsmanager.NewFromConfig(cfg),
		sts:     sts.NewFromConfig(cfg),
		logs:    cloudwatchlogs.NewFromConfig(cfg),
		cw:      cloudwatch.NewFromConfig(cfg),
		ssm:     ssm.NewFromConfig(cfg),
		cfn:     cloudformation.NewFromConfig(cfg),
	}, nil
}
