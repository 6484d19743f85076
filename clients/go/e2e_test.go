// End to end: the real router ($SWITCHYARD_BIN, else target/debug/switchyard), the
// dispatcher binary ($DISPATCHER_BIN, else built here with `go build`), and two nexus
// clients of the test's own: one publishes, one watches the testament topic.
//
// The dispatcher connects through a TCP proxy whose cut() resets the connection, so
// that a lost connection (no GOODBYE) can be made on demand: the router must publish
// the lost session's testament, and the dispatcher must come back as a new session
// with a testament of its own, which SIGKILL then makes the router publish too.

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gammazero/nexus/v3/client"
	"github.com/gammazero/nexus/v3/wamp"
)

// startRouter runs `switchyard serve` on an ephemeral port; returns its WebSocket URL.
func startRouter(t *testing.T) string {
	bin := os.Getenv("SWITCHYARD_BIN")
	if bin == "" {
		bin = "../../target/debug/switchyard"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no router binary (build it with cargo build, or set SWITCHYARD_BIN): %v", err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--rawsocket", "off")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l struct{ Event, Websocket string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Event == "listening" {
				ready <- l.Websocket
			}
		}
	}()
	select {
	case url := <-ready:
		return url
	case <-time.After(15 * time.Second):
		t.Fatalf("the router did not announce its listeners in 15 s:\n%s", stderr.String())
		return ""
	}
}

// proxy forwards TCP connections to addr; cut() resets every connection it carries.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
}

func startProxy(t *testing.T, addr string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				down.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, down.(*net.TCPConn), up.(*net.TCPConn))
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, down); up.Close() }()
			go func() { _, _ = io.Copy(down, up); down.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.SetLinger(0) // close with a TCP reset: the connection is lost, not closed
		c.Close()
	}
	p.conns = nil
}

// lines collects a stream's complete lines.
type lines struct {
	mu sync.Mutex
	l  []string
}

func collect(r io.Reader) *lines {
	ls := &lines{}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ls.mu.Lock()
			ls.l = append(ls.l, sc.Text())
			ls.mu.Unlock()
		}
	}()
	return ls
}

func (ls *lines) get() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return append([]string(nil), ls.l...)
}

// waitFor polls until cond holds on the lines, failing after 5 s.
func (ls *lines) waitFor(t *testing.T, what string, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := ls.get()
		if cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; have:\n%s", what, strings.Join(l, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dispatcherBinary(t *testing.T) string {
	if bin := os.Getenv("DISPATCHER_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "dispatcher")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// dispatcherCommand runs the dispatcher without the caller's $SWITCHYARD_TICKET
// (realm1 takes anonymous sessions).
func dispatcherCommand(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(dispatcherBinary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHYARD_TICKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

func join(t *testing.T, url string) *client.Client {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.ConnectNet(ctx, url, client.Config{Realm: "realm1"})
	if err != nil {
		t.Fatalf("joining realm1 at %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var joinedLine = regexp.MustCompile(`^dispatcher: session (\d+) joined realm1: following dispatch\.containers, containers\.\.events; testament on dispatch\.dispatchers\.gone$`)

func TestDispatcherFollowsEventsAndItsTestamentIsPublished(t *testing.T) {
	routerURL := startRouter(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(routerURL, "ws://"), "/ws")
	px := startProxy(t, addr)

	watcher := join(t, routerURL)
	testaments := make(chan *wamp.Event, 10)
	if err := watcher.SubscribeChan("dispatch.dispatchers.gone", testaments, nil); err != nil {
		t.Fatal(err)
	}
	pub := join(t, routerURL)
	publish := func(topic string, args wamp.List, kwargs wamp.Dict) {
		t.Helper()
		if err := pub.Publish(topic, wamp.Dict{wamp.OptAcknowledge: true}, args, kwargs); err != nil {
			t.Fatalf("publish to %s: %v", topic, err)
		}
	}
	nextTestament := func() (wamp.List, wamp.Dict) {
		t.Helper()
		select {
		case ev := <-testaments:
			return ev.Arguments, ev.ArgumentsKw
		case <-time.After(5 * time.Second):
			t.Fatal("no testament within 5 s")
			return nil, nil
		}
	}

	cmd := dispatcherCommand(t, "-url", "ws://"+px.ln.Addr().String()+"/ws", "-name", "d1")
	stdoutPipe, _ := cmd.StdoutPipe()
	stderrPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	stdout, stderr := collect(stdoutPipe), collect(stderrPipe)
	sessionOf := func(line string) uint64 {
		var id uint64
		fmt.Sscan(joinedLine.FindStringSubmatch(line)[1], &id)
		return id
	}
	joined := func(n int) func([]string) bool {
		return func(l []string) bool { return len(l) >= n && joinedLine.MatchString(l[n-1]) }
	}

	// 1. what it follows, one line each; what it does not follow, nothing
	first := stderr.waitFor(t, "the dispatcher's first session", joined(1))
	publish("dispatch.containers", wamp.List{"c1"}, wamp.Dict{"image": "alpine"})
	publish("containers.c1.events", wamp.List{"queued"}, nil)
	publish("containers.c1.logs", wamp.List{"a log line"}, nil)     // another kind of topic
	publish("containers.c1.events.extra", wamp.List{"deeper"}, nil) // one component too many
	publish("containers.c2.events", wamp.List{"started"}, wamp.Dict{"node": "n1", "pid": 42})
	publish("containers.c9.events", wamp.List{}, nil)
	want := []string{
		`dispatch.containers ["c1"] {"image":"alpine"}`,
		`containers.c1.events ["queued"]`,
		`containers.c2.events ["started"] {"node":"n1","pid":42}`,
		`containers.c9.events []`,
	}
	got := stdout.waitFor(t, "4 event lines", func(l []string) bool { return len(l) >= 4 })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("printed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// 2. the connection is lost: the router publishes the testament of that session;
	// the dispatcher comes back as another session
	px.cut()
	args, kwargs := nextTestament()
	if want := (wamp.List{"d1"}); !reflect.DeepEqual(args, want) || fmt.Sprint(kwargs["session"]) != fmt.Sprint(sessionOf(first[0])) {
		t.Fatalf("testament %v %v, want %v {session: %d}", args, kwargs, want, sessionOf(first[0]))
	}
	again := stderr.waitFor(t, "the dispatcher's second session", joined(3))
	if again[1] != "dispatcher: connection lost; reconnecting in 500ms" {
		t.Fatalf("stderr line 2: %q", again[1])
	}
	publish("containers.c3.events", wamp.List{"after the reconnect"}, nil)
	got = stdout.waitFor(t, "the event after the reconnect", func(l []string) bool { return len(l) >= 5 })
	if got[4] != `containers.c3.events ["after the reconnect"]` {
		t.Fatalf("line 5: %q", got[4])
	}

	// 3. killed: the second session's testament
	_ = cmd.Process.Kill()
	args, kwargs = nextTestament()
	if fmt.Sprint(args, kwargs["session"]) != fmt.Sprint(wamp.List{"d1"}, sessionOf(again[2])) {
		t.Fatalf("testament %v %v, want [d1] {session: %d}", args, kwargs, sessionOf(again[2]))
	}
	select {
	case ev := <-testaments:
		t.Fatalf("a third testament: %v %v", ev.Arguments, ev.ArgumentsKw)
	case <-time.After(200 * time.Millisecond):
	}
	if l := stdout.get(); len(l) != 5 {
		t.Fatalf("%d lines printed, want 5:\n%s", len(l), strings.Join(l, "\n"))
	}
	if l := stderr.get(); len(l) != 3 {
		t.Fatalf("stderr:\n%s", strings.Join(l, "\n"))
	}
}

func TestDispatcherRefusedExitsWithTheRoutersReason(t *testing.T) {
	routerURL := startRouter(t)
	cmd := dispatcherCommand(t, "-url", routerURL, "-realm", "nope")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit status %d (%v), want 1:\n%s", code, err, out)
	}
	const want = "dispatcher: the router refused to join realm nope: received unexpected ABORT message when expecting WELCOME: wamp.error.no_such_realm message=no such realm 'nope'\n"
	if string(out) != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
}
