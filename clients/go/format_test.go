// eventLine, exactly: what a user reads, and what the end-to-end test relies on.

package main

import (
	"testing"

	"github.com/gammazero/nexus/v3/wamp"
)

func TestEventLine(t *testing.T) {
	cases := []struct {
		args   wamp.List
		kwargs wamp.Dict
		want   string
	}{
		{nil, nil, `containers.c1.events []`},
		{wamp.List{"queued"}, wamp.Dict{}, `containers.c1.events ["queued"]`},
		{wamp.List{"c1", int64(3)}, wamp.Dict{"node": "n2", "at": 1.5}, `containers.c1.events ["c1",3] {"at":1.5,"node":"n2"}`},
		{wamp.List{map[string]interface{}{"b": true, "a": nil}}, nil, `containers.c1.events [{"a":null,"b":true}]`},
		// JSON has no form for a map with integer keys: Go's own rendering instead
		{wamp.List{map[interface{}]interface{}{1: "x"}}, nil, `containers.c1.events [map[1:x]]`},
	}
	for _, c := range cases {
		if got := eventLine("containers.c1.events", c.args, c.kwargs); got != c.want {
			t.Errorf("eventLine(%v, %v) = %s, want %s", c.args, c.kwargs, got, c.want)
		}
	}
}
