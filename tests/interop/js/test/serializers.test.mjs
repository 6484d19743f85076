// Cross-serializer routing: values published/called with one serializer arrive equal
// with another, including binary, which JSON carries as "\u0000" + base64 (WAMP spec,
// "Binary support in JSON").

import assert from 'node:assert/strict';
import { routerSuite, autobahn, normBin, MSG, show, jsonBinReplacer } from './helpers.mjs';

const BIN = Buffer.from([0x00, 0x01, 0x02, 0xfe, 0xff, 0x10, 0xe3]);
const BIN_JSON = '\u0000' + BIN.toString('base64'); // "\u0000AAEC/v8Q4w=="
const EMPTY_BIN = Buffer.alloc(0);

// values every serializer represents the same way
const PLAIN_ARGS = [
  0, 1, -1, 255, 65536, -129, 2 ** 40, -(2 ** 40), 9007199254740991,
  3.5, 0.1, -2.25e10, 1e-7,
  true, false, null,
  '', 'ascii', 'grüße €𝄞', 'line\nbreak "quoted" \\ slash',
  [], [1, [2, [3, []]]], {}, { nested: { deeper: { list: [1, 'x', null] } } },
];
const PLAIN_KWARGS = { int: 7, float: 1.5, str: 'ß', list: [true, null], obj: { a: { b: 'c' } }, 'key with space': 1, 'ключ': 'значение' };

routerSuite('cross-serializer routing (default config)', (test) => {
  test('json publisher → msgpack, cbor, json and rawsocket-json subscribers: equal values incl. binary', async (ctx) => {
    const topic = ctx.uri('cross');
    const pub = await ctx.connect({ serializer: 'json', label: 'pub-json' });
    const subs = {
      msgpack: await ctx.connect({ serializer: 'msgpack', label: 'sub-msgpack' }),
      cbor: await ctx.connect({ serializer: 'cbor', label: 'sub-cbor' }),
      json: await ctx.connect({ serializer: 'json', label: 'sub-json' }),
      jsonRaw: await ctx.connect({ serializer: 'json', binary: false, label: 'sub-json-raw' }),
      rawsocket: await ctx.connect({ transport: 'rawsocket', label: 'sub-rawsocket' }),
    };
    const inboxes = {};
    for (const [k, c] of Object.entries(subs)) {
      inboxes[k] = ctx.inbox(k);
      await c.session.subscribe(topic, inboxes[k].handler);
    }
    const args = [...PLAIN_ARGS, BIN, EMPTY_BIN];
    const kwargs = { ...PLAIN_KWARGS, bin: BIN, deep: { list: [BIN] } };
    await pub.session.publish(topic, args, kwargs, { acknowledge: true });
    // the json publisher's serializer turns bytes into the \0-base64 form
    const publish = pub.tx.find((m) => m[0] === MSG.PUBLISH);
    assert.equal(JSON.parse(JSON.stringify([publish[4][PLAIN_ARGS.length]], jsonBinReplacer))[0], BIN_JSON);

    const expectedBin = normBin([args, kwargs]);
    const asJsonStrings = [
      [...PLAIN_ARGS, BIN_JSON, '\u0000'],
      { ...PLAIN_KWARGS, bin: BIN_JSON, deep: { list: [BIN_JSON] } },
    ];
    for (const k of ['msgpack', 'cbor', 'json']) {
      const [ev] = await inboxes[k].waitFor(1);
      assert.deepEqual(normBin([ev.args, ev.kwargs]), expectedBin, `${k} subscriber`);
    }
    for (const k of ['jsonRaw', 'rawsocket']) {
      const [ev] = await inboxes[k].waitFor(1);
      assert.deepEqual([ev.args, ev.kwargs], asJsonStrings, `${k} subscriber sees the JSON binary convention`);
    }
    // the msgpack subscriber really got bytes (msgpack bin), not a string
    const [mev] = await inboxes.msgpack.waitFor(1);
    assert.ok(Buffer.isBuffer(mev.args[PLAIN_ARGS.length]), `msgpack got ${show(mev.args[PLAIN_ARGS.length])}`);
  });

  test('msgpack publisher → json subscriber sees "\\u0000"+base64; cbor subscriber sees bytes', async (ctx) => {
    const topic = ctx.uri('cross2');
    const pub = await ctx.connect({ serializer: 'msgpack', label: 'pub-msgpack' });
    const jsonRaw = await ctx.connect({ serializer: 'json', binary: false, label: 'sub-json-raw' });
    const cbor = await ctx.connect({ serializer: 'cbor', label: 'sub-cbor' });
    const rs = await ctx.connect({ transport: 'rawsocket', label: 'sub-rawsocket' });
    const [ij, ic, ir] = [ctx.inbox('json'), ctx.inbox('cbor'), ctx.inbox('rawsocket')];
    await jsonRaw.session.subscribe(topic, ij.handler);
    await cbor.session.subscribe(topic, ic.handler);
    await rs.session.subscribe(topic, ir.handler);
    await pub.session.publish(topic, [BIN, 'text', 3.5], { b: BIN }, { acknowledge: true });
    const [[ej], [ec], [er]] = await Promise.all([ij.waitFor(1), ic.waitFor(1), ir.waitFor(1)]);
    assert.deepEqual([ej.args, ej.kwargs], [[BIN_JSON, 'text', 3.5], { b: BIN_JSON }]);
    assert.deepEqual([er.args, er.kwargs], [[BIN_JSON, 'text', 3.5], { b: BIN_JSON }]);
    assert.deepEqual(normBin([ec.args, ec.kwargs]), [[BIN, 'text', 3.5], { b: BIN }]);
  });

  test('cbor caller → json callee → cbor caller: RPC args, kwargs and binary survive both conversions', async (ctx) => {
    const proc = ctx.uri('echo');
    const callee = await ctx.connect({ serializer: 'json', label: 'callee-json' });
    const caller = await ctx.connect({ serializer: 'cbor', label: 'caller-cbor' });
    const seen = [];
    await callee.session.register(proc, (args, kwargs) => {
      seen.push(normBin([args, kwargs]));
      return new autobahn.Result(args, kwargs);
    });
    const args = [...PLAIN_ARGS, BIN];
    const kwargs = { ...PLAIN_KWARGS, bin: BIN };
    const res = await caller.session.call(proc, args, kwargs);
    assert.deepEqual(seen, [normBin([args, kwargs])]);
    assert.deepEqual(normBin([res.args, res.kwargs]), normBin([args, kwargs]));
    const inv = callee.rx.find((m) => m[0] === MSG.INVOCATION);
    assert.ok(Buffer.isBuffer(inv[4][PLAIN_ARGS.length]), 'json callee decoded the \\0-base64 string');
  });

  test('rawsocket-json caller → msgpack callee: "\\u0000"+base64 string becomes msgpack bytes', async (ctx) => {
    const proc = ctx.uri('len');
    const callee = await ctx.connect({ serializer: 'msgpack', label: 'callee-msgpack' });
    const caller = await ctx.connect({ transport: 'rawsocket', label: 'caller-rawsocket' });
    await callee.session.register(proc, (args) => {
      const b = args[0];
      return [Buffer.isBuffer(b), b.length, Buffer.from(b).toString('hex')];
    });
    const res = await caller.session.call(proc, [BIN_JSON]);
    assert.deepEqual(res, [true, BIN.length, BIN.toString('hex')]);
  });

  test('application error with binary args from a msgpack callee reaches a json caller as "\\u0000"+base64', async (ctx) => {
    const proc = ctx.uri('binerr');
    const callee = await ctx.connect({ serializer: 'msgpack', label: 'callee-msgpack' });
    const caller = await ctx.connect({ serializer: 'json', binary: false, label: 'caller-json-raw' });
    await callee.session.register(proc, () => {
      throw new autobahn.Error('com.example.error.binary', [BIN], { b: BIN });
    });
    let err;
    try {
      await caller.session.call(proc);
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'call must fail');
    assert.equal(err.error, 'com.example.error.binary');
    assert.deepEqual([err.args, err.kwargs], [[BIN_JSON], { b: BIN_JSON }]);
  });
});
