// One dispatcher session at a time, and the loop that replaces a lost one.
//
// Each session subscribes to dispatch.containers (exact) and containers..events
// (wildcard: every container's events), then leaves its testament. The testament
// belongs to the session: the router publishes it when that session ends, cleanly or
// not (docs/meta.md), so a new session after a reconnect leaves a new one.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/gammazero/nexus/v3/client"
	"github.com/gammazero/nexus/v3/transport"
	"github.com/gammazero/nexus/v3/wamp"
)

const (
	retryFirst = 500 * time.Millisecond
	retryMax   = 30 * time.Second
	// A request the router does not answer in this time counts as a lost connection.
	responseTimeout = 10 * time.Second
	// Pings find a connection that died silently (a peer gone without a TCP reset).
	keepAlive = 15 * time.Second
)

// What the dispatcher follows: the queue of containers to dispatch, and the
// lifecycle events of every container (an empty URI component matches any).
var subscriptions = []struct {
	topic string
	match string
}{
	{"dispatch.containers", wamp.MatchExact},
	{"containers..events", wamp.MatchWildcard},
}

type dispatcher struct {
	cfg config
	out io.Writer   // one line per event
	log *log.Logger // what happens to the sessions (stderr)
	mu  sync.Mutex  // one event line at a time on out
}

// refusedError: the router said no (ABORT, a refused subscription or testament);
// trying again would get the same answer.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }

// run keeps a session going until ctx ends (exit status 0) or the router refuses the
// dispatcher (1).
func (d *dispatcher) run(ctx context.Context) int {
	delay := retryFirst
	joinedOnce := false
	for {
		c, err := d.connect(ctx)
		var refused refusedError
		switch {
		case ctx.Err() != nil:
			return 0
		case errors.As(err, &refused) && !joinedOnce:
			// The first login refused is a wrong ticket or realm: say so and stop. Later
			// a refusal may pass (the workbench realm refuses while its database is away).
			d.log.Printf("%v", err)
			return 1
		case err != nil:
			d.log.Printf("cannot join %s at %s: %v; retrying in %v", d.cfg.realm, d.cfg.url, err, delay)
		default:
			joinedOnce = true
			what, err := d.serve(ctx, c)
			if errors.As(err, &refused) {
				d.log.Printf("%v", err)
				return 1
			}
			if ctx.Err() != nil {
				return 0
			}
			if err == nil {
				delay = retryFirst // a session that got going resets the backoff
			}
			d.log.Printf("%s; reconnecting in %v", what, delay)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(delay):
		}
		if delay *= 2; delay > retryMax {
			delay = retryMax
		}
	}
}

// connect joins the realm (with a ticket if one is configured).
func (d *dispatcher) connect(ctx context.Context) (*client.Client, error) {
	cfg := client.Config{
		Realm:           d.cfg.realm,
		ResponseTimeout: responseTimeout,
		Logger:          log.New(d.log.Writer(), "dispatcher: nexus: ", 0),
		WsCfg:           transport.WebsocketConfig{KeepAlive: keepAlive},
	}
	if d.cfg.authid != "" {
		cfg.HelloDetails = wamp.Dict{"authid": d.cfg.authid}
	}
	answered := false // a ticket challenge was answered
	if d.cfg.ticket != "" {
		ticket := d.cfg.ticket
		cfg.AuthHandlers = map[string]client.AuthFunc{
			"ticket": func(*wamp.Challenge) (string, wamp.Dict) {
				answered = true
				return ticket, wamp.Dict{}
			},
		}
	}
	dialCtx, cancel := context.WithTimeout(ctx, responseTimeout)
	defer cancel()
	c, err := client.ConnectNet(dialCtx, d.cfg.url, cfg)
	if err == nil {
		return c, nil
	}
	// nexus reports an ABORT only as the text of its error: after HELLO as "received
	// unexpected ABORT ...", after AUTHENTICATE as the router's message alone, which
	// is then anything but the two ways the connection itself can fail.
	msg := err.Error()
	lost := msg == "receive channel closed" || msg == "timeout waiting for message"
	if strings.Contains(msg, "unexpected ABORT") || (answered && !lost) {
		return nil, refusedError{fmt.Errorf("the router refused to join realm %s: %v", d.cfg.realm, err)}
	}
	return nil, err
}

// serve sets a session up, then waits for its end: ctx done (the session leaves) or
// the connection lost. It returns what ended it, and an error if setting up failed.
func (d *dispatcher) serve(ctx context.Context, c *client.Client) (string, error) {
	defer c.Close()
	if err := d.setUp(ctx, c); err != nil {
		if !c.Connected() {
			return "connection lost while subscribing", err
		}
		return "", refusedError{err}
	}
	select {
	case <-ctx.Done():
		return "stopped", nil
	case <-c.Done():
	}
	if gb := c.RouterGoodbye(); gb != nil {
		return fmt.Sprintf("the router closed the session (%s)", gb.Reason), nil
	}
	return "connection lost", nil
}

func (d *dispatcher) setUp(ctx context.Context, c *client.Client) error {
	topics := make([]string, 0, len(subscriptions))
	for _, s := range subscriptions {
		topic := s.topic
		onEvent := func(ev *wamp.Event) {
			// A pattern subscription's events say which topic they were published to.
			t, _ := wamp.AsString(ev.Details["topic"])
			if t == "" {
				t = topic
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			fmt.Fprintln(d.out, eventLine(t, ev.Arguments, ev.ArgumentsKw))
		}
		if err := c.Subscribe(s.topic, onEvent, wamp.Dict{wamp.OptMatch: s.match}); err != nil {
			return fmt.Errorf("cannot subscribe to %s: %v", s.topic, err)
		}
		topics = append(topics, s.topic)
	}
	testament := "no testament"
	if d.cfg.testamentTopic != "" {
		// add_testament(topic, args, kwargs): published as if this session published it,
		// so the realm must let the dispatcher publish there.
		callCtx, cancel := context.WithTimeout(ctx, responseTimeout)
		defer cancel()
		args := wamp.List{d.cfg.testamentTopic, wamp.List{d.cfg.name}, wamp.Dict{"session": c.ID()}}
		if _, err := c.Call(callCtx, string(wamp.MetaProcSessionAddTestament), nil, args, nil, nil); err != nil {
			return fmt.Errorf("cannot leave a testament on %s: %v", d.cfg.testamentTopic, err)
		}
		testament = "testament on " + d.cfg.testamentTopic
	}
	d.log.Printf("session %v joined %s: following %s; %s", c.ID(), d.cfg.realm, strings.Join(topics, ", "), testament)
	return nil
}
