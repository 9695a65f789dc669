package main

import (
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

const sourceCategory = "Source of truth"

// sourceFlags choose the secret's source of truth and how the fleet gets
// it, for every command that reads or changes the fleet's secret.
func sourceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "source", EnvVars: []string{"VALINE_SOURCE"}, Category: sourceCategory,
			Usage: "where the deploy reads the secret: lambda-env (the functions' environment), ssm:/name (a SecureString; the secondary in /name-secondary) or secretsmanager:name (AWSCURRENT, AWSPREVIOUS as the secondary); written and read back before any function. Default: what the last rotation journalled, else lambda-env"},
		&cli.StringFlag{Name: "delivery", EnvVars: []string{"VALINE_DELIVERY"}, Category: sourceCategory,
			Usage: "env (the secret is in every function's environment) or runtime (the functions read the store at run time, e.g. the Parameters and Secrets Lambda Extension: only the store is written). Default: the journalled one, else env"},
		&cli.DurationFlag{Name: "cache-ttl", EnvVars: []string{"VALINE_CACHE_TTL"}, Category: sourceCategory,
			Usage: "with --delivery runtime, how long the functions cache the secret (default 5m, the extension's); verification waits that much longer"},
	}
}

// deployFlags are rotate's: what to do when the next deploy would undo it.
func deployFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "allow-deploy-drift", EnvVars: []string{"VALINE_ALLOW_DEPLOY_DRIFT"}, Category: sourceCategory,
			Usage: "rotate a stack-managed fleet although its next deploy would put the old secret back (a --source lambda-env rotation, or a source the template does not read)"},
	}
}

// sourceRule checks --source where it appears, but in the sandbox, whose
// --source names the kind of world to build (lambda-env or ssm) and is
// checked there.
func sourceRule(cCtx *cli.Context, name string) error {
	if cCtx.Command.Name == "sandbox" {
		return nil
	}
	_, err := journal.ParseSource(cCtx.String(name))
	return err
}

// deliveryRule checks --delivery where it appears.
func deliveryRule(cCtx *cli.Context, name string) error {
	_, err := journal.ParseDelivery(cCtx.String(name))
	return err
}

// applySource gives the engine the asked source, delivery and TTL (zero
// when not asked: the journalled ones), the stores' clients and the
// templates' reader.
func applySource(cCtx *cli.Context, e *rotate.Engine, c awsClients) {
	if cCtx.IsSet("source") {
		e.Source, _ = journal.ParseSource(cCtx.String("source")) // checked by sourceRule
	}
	if cCtx.IsSet("delivery") {
		e.Delivery, _ = journal.ParseDelivery(cCtx.String("delivery"))
	}
	e.CacheTTL = cCtx.Duration("cache-ttl")
	e.AllowDeployDrift = cCtx.Bool("allow-deploy-drift")
	e.Stores = rotate.StoreClients{SSM: c.ssm, Secrets: c.secrets}
	e.Deploy = c.cfn
}
