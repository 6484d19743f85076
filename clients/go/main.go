// Command dispatcher follows the platform's container events on a Switchyard router
// with the nexus WAMP client (clients/go/README.md): it subscribes to
// dispatch.containers and to the wildcard pattern containers..events, prints one line
// per event, leaves a testament (wamp.session.add_testament) that the router publishes
// when the dispatcher's session ends for any reason, and reconnects with backoff.
//
// Exit status: 0 after SIGINT/SIGTERM, 1 when the router refuses the dispatcher (its
// first login, a subscription, the testament), 2 for a usage error.

package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2) // parseConfig said what is wrong
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	d := &dispatcher{cfg: cfg, out: os.Stdout, log: log.New(os.Stderr, "dispatcher: ", 0)}
	code := d.run(ctx)
	stop()
	os.Exit(code)
}
