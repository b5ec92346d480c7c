// The web panel in a real browser (Debian's Chromium through
// playwright-core) against the real stack tests/web/e2e.sh started:
//
//   admin, desktop: sign in, create a server from a template, install, start, see the game's
//   console, type a command and see the answer, stop, see "offline";
//   a subuser without control.start, phone-sized: the start button is
//   disabled (with its reason) and the API refuses the action anyway.
//
// Screenshots of the main pages go to ARTIFACT_DIR.
//
//   node e2e.mjs PANEL_URL ADMIN_PASSWORD ARTIFACT_DIR TEMPLATE_JSON
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, adminPassword, artifacts, templatePath] = process.argv.slice(2);
const require = createRequire(path.join(process.env.WARDEN_NODE_MODULES || '.', 'x.js'));
const { chromium } = require('playwright-core');

const T = 30000; // generous: CI machines can be slow
let step = 'setup';
const fail = (why) => {
  throw new Error(`${step}: ${why}`);
};

async function api(method, route, token, body) {
  try {
    return await apiOnce(method, route, token, body);
  } catch (e) {
    fail(`${method} ${route}: ${e.message || e}${e.cause ? ` (${e.cause.message || e.cause})` : ''}`);
  }
}

async function apiOnce(method, route, token, body) {
  const res = await fetch(`${base}/api/v1${route}`, {
    signal: AbortSignal.timeout(20000), // a hung request is an error, with its route
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

async function login(username, password) {
  const r = await api('POST', '/auth/login', null, { username, password });
  if (r.status !== 200) fail(`login ${username}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.access_token;
}

// Waits until the locator's text contains `text`.
async function waitText(locator, text, what) {
  const until = Date.now() + T;
  let last = '';
  while (Date.now() < until) {
    last = (await locator.innerText().catch(() => '')) || '';
    if (last.includes(text)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(`${what}: "${text}" never appeared (last: ${JSON.stringify(last.slice(-300))})`);
}

async function signIn(page, username, password) {
  await page.goto(base + '/');
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  // The game's template: make run loads the shipped ones (else import it);
  // the node is the one make run joined.
  step = 'data';
  const admin = await login('admin', adminPassword);
  const tpls = await api('GET', '/templates?per_page=100', admin);
  let tpl = { json: tpls.json?.data?.find((t) => t.slug === 'testgame') };
  if (!tpl.json) {
    tpl = await api('POST', '/templates', admin, readFileSync(templatePath, 'utf8'));
    if (tpl.status !== 201) fail(`template: ${tpl.status}`);
  }

  // Admin on a desktop: sign in, create the server from the template.
  step = 'sign in';
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desk.newPage();
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await signIn(page, 'admin', adminPassword);
  step = 'create server';
  await page.getByTestId('create-server').click();
  await page.getByTestId('create-server-name').fill('Browser game');
  const tplSelect = page.getByTestId('create-server-template');
  await tplSelect.waitFor({ timeout: T });
  await tplSelect.selectOption(tpl.json.id);
  await page.getByTestId('create-server-submit').click();
  let sid = null;
  for (const until = Date.now() + T; !sid && Date.now() < until; ) {
    const list = await api('GET', '/servers', admin);
    sid = list.json?.data?.find((x) => x.name === 'Browser game')?.id || null;
    if (!sid) await new Promise((r) => setTimeout(r, 300));
  }
  if (!sid) fail('the server was not created');
  await page.goto(base + '/');
  const row = page.locator(`[data-testid="server-row"][data-server-id="${sid}"]`);
  await row.waitFor({ timeout: T });
  await page.screenshot({ path: path.join(artifacts, 'servers-desktop.png'), fullPage: true });

  step = 'server page';
  await row.click();
  const state = page.getByTestId('server-state');
  await waitText(state, 'offline', 'state before install');

  step = 'install';
  await page.getByTestId('install-button').click();
  const confirmInstall = page.getByTestId('confirm-install');
  if (await confirmInstall.isVisible().catch(() => false)) await confirmInstall.click();
  await waitText(state, 'installing', 'state while installing').catch(() => {}); // may be brief
  const installed = Date.now() + T;
  for (;;) {
    const s = await api('GET', `/servers/${sid}`, admin);
    if (s.json?.installed) break;
    if (Date.now() > installed) fail('never installed');
    await new Promise((r) => setTimeout(r, 300));
  }
  await waitText(state, 'offline', 'state after install');

  step = 'start';
  await page.getByTestId('power-start').click();
  await waitText(state, 'running', 'state after start');
  const terminal = page.getByTestId('console');
  await waitText(terminal, 'Ready: test game listening', 'console ready line');

  step = 'command';
  const input = page.getByTestId('console-input');
  await input.fill('echo typed-in-the-browser');
  await input.press('Enter');
  await waitText(terminal, 'typed-in-the-browser', 'console answer');
  await page.screenshot({ path: path.join(artifacts, 'server-desktop.png'), fullPage: true });

  step = 'stop';
  await page.getByTestId('power-stop').click();
  await waitText(state, 'offline', 'state after stop');
  if (consoleErrors.length) fail(`page errors: ${consoleErrors.join('; ')}`);

  // A subuser without control.start, on a phone.
  step = 'subuser';
  const made = await api('POST', '/users', admin, {
    username: 'player',
    email: 'player@example.com',
    password: 'player password 1',
    role: 'user',
  });
  if (made.status !== 201) fail(`user: ${made.status} ${JSON.stringify(made.json)}`);
  const sub = await api('POST', `/servers/${sid}/users`, admin, {
    email: 'player@example.com',
    permissions: ['websocket.connect', 'control.console', 'control.stop'],
  });
  if (sub.status !== 201) fail(`subuser: ${sub.status} ${JSON.stringify(sub.json)}`);
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  const ppage = await phone.newPage();
  await signIn(ppage, 'player', 'player password 1');
  const prow = ppage.locator(`[data-testid="server-row"][data-server-id="${sid}"]`);
  await prow.waitFor({ timeout: T });
  await ppage.screenshot({ path: path.join(artifacts, 'servers-phone.png'), fullPage: true });
  await prow.click();
  await waitText(ppage.getByTestId('server-state'), 'offline', 'subuser sees the state');
  const start = ppage.getByTestId('power-start');
  await start.waitFor({ timeout: T });
  // Disabled, and for the right reason (not merely while loading).
  const until = Date.now() + T;
  let reason = '';
  while (Date.now() < until && !reason.includes('control.start')) {
    reason = (await start.getAttribute('data-reason')) || '';
    if (!reason.includes('control.start')) await new Promise((r) => setTimeout(r, 200));
  }
  if (!reason.includes('control.start')) fail(`start button reason: ${JSON.stringify(reason)}`);
  if (!(await start.isDisabled())) fail('the start button is enabled for a user without control.start');
  await ppage.screenshot({ path: path.join(artifacts, 'server-phone.png'), fullPage: true });
  const player = await login('player', 'player password 1');
  const refused = await api('POST', `/servers/${sid}/power`, player, { action: 'start' });
  if (refused.status !== 403) fail(`the API let the subuser start it: ${refused.status}`);

  console.log('e2e: ok (screenshots in ' + artifacts + ')');
} catch (e) {
  console.error('e2e: FAILED at', e.message || e, e.cause ? `(${e.cause.message || e.cause})` : '');
  process.exitCode = 1;
  // What the API was doing: its pool and request figures (with a timeout:
  // it may be the thing that hangs).
  try {
    const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    console.error(text.split('\n').filter((l) => /^warden_(db_|http_in|bus)/.test(l)).join('\n'));
  } catch (m) {
    console.error('e2e: /metrics did not answer either:', m.message || m);
  }
} finally {
  await browser.close();
}
