// The dispatcher's command line: flags (also written --flag), with the ticket also
// taken from $SWITCHYARD_TICKET so that it stays out of the process list.

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type config struct {
	url            string
	realm          string
	authid         string
	ticket         string
	name           string // who the testament says is gone
	testamentTopic string // "" leaves no testament
}

const usageHead = `usage: dispatcher [options]

Follows dispatch.containers and every container's events (containers..events) on a
Switchyard router, one line per event on stdout; leaves a testament that announces
its death; reconnects with backoff when the connection is lost.

`

// errUsage: the problem was reported on stderr, with the usage text.
var errUsage = errors.New("usage")

// parseConfig reads the flags. A usage problem is reported on stderr and returned as
// errUsage (or the flag package's own error); -h returns flag.ErrHelp.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("dispatcher", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	var c config
	fs.StringVar(&c.url, "url", "ws://127.0.0.1:8080/ws", "the router's `URL` (ws://, wss://, tcp:// for RawSocket)")
	fs.StringVar(&c.realm, "realm", "realm1", "the `realm` to join")
	fs.StringVar(&c.authid, "authid", "", "the `authid` to log in as (with -ticket)")
	// Not the flag's default: -h would print the secret.
	fs.StringVar(&c.ticket, "ticket", "", "log in with WAMP-Ticket, this `ticket` (default $SWITCHYARD_TICKET)")
	fs.StringVar(&c.name, "name", "", "the `name` the testament announces (default: the authid, else dispatcher@<host>)")
	fs.StringVar(&c.testamentTopic, "testament-topic", "dispatch.dispatchers.gone", "the `topic` of the testament; empty for none")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return c, errUsage
	}
	if c.ticket == "" {
		c.ticket = getenv("SWITCHYARD_TICKET")
	}
	if c.name == "" {
		c.name = c.authid
	}
	if c.name == "" {
		host, _ := os.Hostname()
		c.name = "dispatcher@" + strings.SplitN(host, ".", 2)[0]
	}
	return c, nil
}
