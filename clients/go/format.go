// The dispatcher's output: one compact line per event, the event's topic and its
// payload as JSON, so that it reads well in a terminal and in a log collector alike.

package main

import (
	"encoding/json"
	"fmt"

	"github.com/gammazero/nexus/v3/wamp"
)

// eventLine is "<topic> <args as JSON>", then " <kwargs as JSON>" when there are any:
//
//	containers.c1.events ["started"] {"exit_code":0}
//
// A payload that JSON cannot show (it came from a MessagePack or CBOR publisher with
// keys JSON has no form for) is shown with Go's %v instead of being dropped.
func eventLine(topic string, args wamp.List, kwargs wamp.Dict) string {
	if args == nil {
		args = wamp.List{}
	}
	line := topic + " " + compactJSON(args)
	if len(kwargs) > 0 {
		line += " " + compactJSON(kwargs)
	}
	return line
}

func compactJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
