// What switchyard-tail prints for an event: its line text, or (--json) one JSON
// object per line. Log events carry their line as the first positional argument
// (`publish('containers.c1.logs', ['line text'])`); anything else is shown as JSON
// rather than guessed at.

/** The line text of an event: args[0] when it is a string, else its payload as JSON. */
export function lineText(args, kwargs) {
  if (typeof args[0] === 'string') {
    // A publisher that forwards raw log output may keep the newline: do not print two.
    return args[0].replace(/\r?\n$/, '');
  }
  const payload = Object.keys(kwargs).length ? { args, kwargs } : args;
  return JSON.stringify(payload);
}

/** The --json form: the event's topic, store position (null if not stored), payload. */
export function jsonLine(topic, pos, args, kwargs) {
  return JSON.stringify({ topic, _pos: pos, args, kwargs });
}
