// A gateway session through a standard npm WebSocket client (`ws`), as a
// Node.js program would write it: auth, history, a command, its effect.
//
//   node node_client.mjs URL TOKEN HISTORY_TEXT COMMAND EFFECT_TEXT
//
// `ws` is resolved from WARDEN_NODE_MODULES (tools/openapi/node_modules,
// installed by scripts/bootstrap). Exit 0: the session went as expected;
// 1: it did not; 77: no `ws` module to test with.
import { createRequire } from 'node:module';
import path from 'node:path';

const [url, token, historyText, command, effectText] = process.argv.slice(2);
let WebSocket;
try {
  const require = createRequire(path.join(process.env.WARDEN_NODE_MODULES || '.', 'x.js'));
  WebSocket = require('ws');
} catch (e) {
  console.error('node_client: no ws module:', e.message);
  process.exit(77);
}

const fail = (why) => { console.error('node_client:', why); process.exit(1); };
const timer = setTimeout(() => fail('timed out'), 10000);
const ws = new WebSocket(url, { origin: 'http://localhost' });
let step = 'auth';
let sawHistory = false;

const send = (event, ...args) => ws.send(JSON.stringify({ event, args }));
const has = (msg, text) => Array.isArray(msg.args) && msg.args.some((a) => typeof a === 'string' && a.includes(text));

ws.on('open', () => send('auth', token));
ws.on('message', (data) => {
  const msg = JSON.parse(data.toString());
  if (msg.event === 'error') fail(`error event: ${JSON.stringify(msg.args)}`);
  if (step === 'auth' && msg.event === 'auth success') {
    step = 'history';
    send('send logs');
  } else if (step === 'history' && msg.event === 'console output' && has(msg, historyText)) {
    sawHistory = true;
    step = 'effect';
    send('send command', command);
  } else if (step === 'effect' && msg.event === 'console output' && has(msg, effectText)) {
    step = 'done';
    ws.close(1000, 'bye');
  }
});
ws.on('close', (code) => {
  clearTimeout(timer);
  if (step !== 'done' || !sawHistory) fail(`closed (${code}) at step ${step}`);
  process.exit(0);
});
ws.on('error', (e) => fail(e.message));
