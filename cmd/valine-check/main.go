// Command valine-check rotates the secret that signs Project Valine's JWTs
// and proves, with probes, that the rotation worked. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// main runs the app (app.go) and exits with the code it maps (exit.go).
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
