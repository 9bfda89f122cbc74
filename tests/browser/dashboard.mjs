// Drives Debian's chromium (headless, through playwright-core) against a
// running `blindcast serve` that tests/integration/test_dashboard.py set up:
//   node dashboard.mjs CONFIG.json
// CONFIG: {base, campaign, keys: {ops, bob, viewer, admin}, sink_log,
//          hostile_address, transactional_address, screenshots (dir or null)}
// Prints one line per step; exits 1 at the first failed check.
import { readFileSync, mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const id = cfg.campaign;
const problems = [];  // CSP violations and script dialogs: none may happen
let step = '';

function check(ok, what) {
  if (!ok) throw new Error(`${step}: ${what}`);
}

function sinkCount() {
  return readFileSync(cfg.sink_log, 'utf8').split('\n').filter((l) => l.includes('"event": "message"')).length;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function shot(page, name) {
  if (!cfg.screenshots) return;
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: `${cfg.screenshots}/${name}.png`, fullPage: false });
}

function watch(page) {
  page.on('dialog', (d) => { problems.push(`a script opened a dialog: ${d.message()}`); d.dismiss(); });
  // The page's own CSP violations are recorded inside it (watcher); the
  // console also carries the preview frames' refusals, which are wanted.
  page.on('console', (m) => {
    const where = (m.location() && m.location().url) || '';
    if (/Content Security Policy|Refused to/.test(m.text()) && !where.includes('/v1/previews/') &&
        !/The document is sandboxed/.test(m.text())) {
      problems.push('CSP: ' + m.text());
    }
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
}

async function signIn(page, key) {
  await page.goto(cfg.base + '/');
  await page.waitForSelector('#sign-in:not([hidden])');
  await page.fill('#key', key);
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForSelector('#nav:not([hidden])', { timeout: 5000 });
}

async function signOut(page) {
  await page.click('#sign-out');
  await page.waitForSelector('#sign-in:not([hidden])');
}

async function confirmDialog(page, reason) {
  await page.waitForSelector('#confirm[open]');
  if (reason !== undefined) await page.fill('#confirm-reason', reason);
  await page.click('#confirm-ok');
  await page.waitForSelector('#confirm:not([open])', { state: 'attached', timeout: 15000 });
}

async function status(page) {
  return page.evaluate(async (cid) => (await fetch(`/v1/campaigns/${cid}`)).json(), id);
}

async function pwned(page) {
  return page.evaluate(() => window.__pwned);
}

// A POST from the page's own origin with the session cookie; `csrf` false leaves the token out.
async function post(page, path, body, csrf) {
  return page.evaluate(async ([p, b, withToken]) => {
    const s = await (await fetch('/ui/session')).json();
    const headers = { 'Content-Type': 'application/json' };
    if (withToken) headers['X-CSRF-Token'] = s.csrf;
    const r = await fetch(p, { method: 'POST', headers, body: JSON.stringify(b) });
    return { status: r.status, body: await r.json() };
  }, [path, body, csrf]);
}

// Records CSP violations in the page itself, before any of its scripts run.
const watcher = () => {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
};

const sandbox = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
const browser = await chromium.launch({ executablePath: cfg.chromium || '/usr/bin/chromium', args: sandbox });
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(watcher);
  const page = await context.newPage();
  watch(page);

  step = 'a wrong key is refused';
  await page.goto(cfg.base + '/');
  await page.waitForSelector('#sign-in:not([hidden])');
  await shot(page, 'sign-in');
  await page.fill('#key', 'bc_0000000000000000_not-a-key');
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('sign-in-error').textContent.length > 0);
  check((await page.textContent('#sign-in-error')).includes('not valid'), 'the error says the key is not valid');
  console.log('ok - ' + step);

  step = 'sign in: an HttpOnly, SameSite=Strict session cookie';
  await signIn(page, cfg.keys.ops);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'bc_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'cookie flags: ' + JSON.stringify(session));
  check(await page.evaluate(() => !document.cookie.includes('bc_session')), 'the page script cannot read the cookie');
  await page.waitForSelector(`a[href="#/c/${id}"]`);
  await shot(page, 'campaigns');
  console.log('ok - ' + step);

  step = 'run the canary from the page and see it pass';
  await page.click(`a[href="#/c/${id}"]`);
  await page.waitForSelector('#act-canary');
  await page.click('#act-canary');
  await confirmDialog(page);
  await page.waitForFunction(() => /canary passed/.test(document.getElementById('stage')?.textContent || ''),
    null, { timeout: 60000 });
  console.log('ok - ' + step);

  step = 'approve: the dialog shows the content hash and each locale first';
  await page.click('#act-approve');
  await page.waitForSelector('#confirm[open] #approve-hash');
  const st0 = await status(page);
  check((await page.textContent('#approve-hash')) === st0.content_hash, 'the hash shown is the content hash');
  const locales = await page.$$eval('#confirm-body tbody tr', (rows) => rows.length);
  check(locales >= 2, `a row per locale (${locales})`);
  await shot(page, 'approve');
  await page.click('#confirm-ok');
  await page.waitForSelector('#confirm:not([open])', { state: 'attached' });
  await page.waitForFunction(() => /1 of 2/.test(document.getElementById('approvals')?.textContent || ''));
  console.log('ok - ' + step);

  step = 'a second person approves with their own key: two names, gates open';
  await signOut(page);
  await signIn(page, cfg.keys.bob);
  await page.goto(`${cfg.base}/#/c/${id}`);
  await page.waitForSelector('#act-approve');
  check(await page.$('#act-full') === null, 'a key without the campaigns scope sees no Run buttons');
  await page.click('#act-approve');
  await confirmDialog(page);
  await page.waitForFunction(() => /2 of 2/.test(document.getElementById('approvals')?.textContent || ''));
  const names = await page.textContent('#approvals');
  check(names.includes('ops-alice') && names.includes('bob'), 'who approved: ' + names);
  console.log('ok - ' + step);

  step = 'a key without approve sees no approve button and gets 403 if it posts anyway';
  await signOut(page);
  await signIn(page, cfg.keys.viewer);
  await page.goto(`${cfg.base}/#/c/${id}`);
  await page.waitForSelector('#approvals');
  check(await page.$('#act-approve') === null, 'no approve button');
  check(await page.$('#act-halt') === null, 'no halt button');
  const forbidden = await post(page, `/v1/campaigns/${id}/approve`, {}, true);
  check(forbidden.status === 403 && forbidden.body.error.code === 'forbidden_scope', JSON.stringify(forbidden));
  console.log('ok - ' + step);

  step = 'a request without the CSRF token is refused';
  await signOut(page);
  await signIn(page, cfg.keys.ops);
  const noToken = await post(page, `/v1/campaigns/${id}/halt`, { reason: 'forged' }, false);
  check(noToken.status === 403 && noToken.body.error.code === 'csrf', JSON.stringify(noToken));
  check(!(await status(page)).halted, 'nothing was halted');
  console.log('ok - ' + step);

  step = "the full send's progress moves on the page";
  await page.goto(`${cfg.base}/#/c/${id}`);
  await page.waitForSelector('#act-full:not([disabled])');
  await page.click('#act-full');
  await confirmDialog(page);
  const seen = [];
  const until = Date.now() + 30000;
  while (Date.now() < until && new Set(seen).size < 3) {
    const v = Number(await page.getAttribute('#sent-total', 'data-sent'));
    if (!seen.length || v !== seen[seen.length - 1]) seen.push(v);
    await sleep(300);
  }
  check(new Set(seen).size >= 3 && seen[seen.length - 1] > seen[0], 'sent counts seen: ' + seen.join(', '));
  check(await page.$('svg.chart polyline') !== null, 'the chart draws a line');
  const total = Number(await page.getAttribute('#sent-total', 'data-total'));
  check(seen[seen.length - 1] < total, 'still sending when halted (raise the sink delay)');
  await shot(page, 'campaign');
  console.log(`ok - ${step} (${seen.join(' → ')} of ${total})`);

  step = 'halt: sending stops within 1 s (counted at the sink) and the page shows it';
  await page.click('#act-halt');
  await confirmDialog(page, 'complaint spike from one provider');
  const halted = Date.now();
  await page.waitForSelector('#halted', { timeout: 3000 });
  const shown = Date.now() - halted;
  await sleep(Math.max(0, 1000 - (Date.now() - halted)));
  const atOne = sinkCount();
  await sleep(2000);
  const atThree = sinkCount();
  check(atThree === atOne, `messages reached the sink after 1 s: ${atOne} then ${atThree}`);
  const st1 = await status(page);
  check(st1.halted && st1.halted.by === 'ops-alice', 'halted by the signed-in key: ' + JSON.stringify(st1.halted));
  check(st1.states.sent < total, 'the send did not finish');
  await shot(page, 'halted');
  console.log(`ok - ${step} (banner after ${shown} ms; ${atOne} at the sink, none after)`);

  step = 'release';
  await page.click('#act-release');
  await confirmDialog(page);
  await page.waitForFunction(() => !document.getElementById('halted'));
  console.log('ok - ' + step);

  step = 'preview: each locale, the HTML sandboxed, every address masked without admin';
  await page.goto(`${cfg.base}/#/c/${id}/preview`);
  await page.waitForSelector('.preview-block iframe');
  const sandboxes = await page.$$eval('.preview-block iframe', (fs) => fs.map((f) => f.getAttribute('sandbox')));
  check(sandboxes.every((s) => s === ''), 'every preview iframe is sandboxed without allowances');
  const blocks = await page.$$eval('.preview-block', (bs) => bs.map((b) => b.textContent).join('\n'));
  const clear = blocks.match(/[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9.-]{2,}/);
  check(!clear, 'an address in clear: ' + (clear && clear[0]));
  check(await page.$('#preview-address') === null, "no recipient's preview without admin");
  check(!(await page.textContent('#view')).includes('null'), 'a stray "null" on the page');
  // Inside the frames too: no address in clear, the template's script did not run, its refresh did not move them.
  await sleep(1000);
  const frames = page.frames().filter((f) => f.url().includes('/v1/previews/'));
  check(frames.length === sandboxes.length, `a frame per preview (${frames.length} of ${sandboxes.length})`);
  for (const f of frames) {
    const body = await f.evaluate(() => document.body ? document.body.textContent : '');
    const inFrame = body.match(/[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9.-]{2,}/);
    check(!inFrame, 'an address in clear in the HTML part: ' + (inFrame && inFrame[0]));
    check(await f.evaluate(() => window.__pwned) === undefined, "the template's script ran in the preview");
  }
  const refused = await post(page, `/v1/campaigns/${id}/preview`, { recipient: cfg.hostile_address }, true);
  check(refused.status === 403, "a recipient's preview needs admin: " + JSON.stringify(refused));
  await shot(page, 'preview');
  console.log('ok - ' + step);

  step = 'transactional streams: volume, latency, failures with reasons';
  await page.goto(`${cfg.base}/#/streams`);
  await page.waitForFunction(() => /password-reset/.test(document.getElementById('view').textContent));
  await page.waitForFunction(() => /p50 ≤ [0-9.]+ s/.test(document.getElementById('view').textContent));
  await page.waitForFunction(() => /5\.1\.1/.test(document.getElementById('view').textContent), null, { timeout: 10000 });
  await shot(page, 'streams');
  console.log('ok - ' + step);

  step = 'recipient lookup needs admin; it shows every message to an address';
  check(await page.isHidden('#nav-lookup'), 'no lookup link without admin');
  await signOut(page);
  await signIn(page, cfg.keys.admin);
  await page.goto(`${cfg.base}/#/lookup`);
  await page.fill('#lookup-address', cfg.transactional_address);
  await page.click('#lookup-form button[type=submit]');
  await page.waitForFunction(() => /password-reset/.test(document.getElementById('view').textContent));
  await page.fill('#lookup-address', cfg.hostile_address);
  await page.click('#lookup-form button[type=submit]');
  await page.waitForFunction((c) => document.getElementById('view').textContent.includes(c), id);
  await shot(page, 'lookup');
  console.log('ok - ' + step);

  step = "a recipient's own preview (admin): a name that is markup stays text";
  await page.goto(`${cfg.base}/#/c/${id}/preview`);
  await page.waitForSelector('#preview-address');
  await page.fill('#preview-address', cfg.hostile_address);
  await page.click('#preview-lookup button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('.preview-block').length === 1);
  const text = await page.textContent('.preview-block pre');
  check(text.includes(cfg.hostile_name_text), 'the hostile name is shown as text');
  let frame = null;
  for (let i = 0; i < 50 && !frame; ++i) {
    frame = page.frames().find((f) => f.url().includes('/v1/previews/'));
    if (!frame) await sleep(100);
  }
  check(frame, 'the HTML part is loaded in a frame');
  await frame.waitForLoadState();
  const html = await frame.evaluate(() => document.body.textContent);
  check(html.includes(cfg.hostile_name_text), 'the frame shows the message, the name as text: ' + html.slice(0, 200));
  check(await frame.evaluate(() => window.__pwned) === undefined, 'nothing ran in the preview frame');
  check(await pwned(page) === undefined, 'nothing ran in the page');
  await shot(page, 'preview-recipient');
  console.log('ok - ' + step);

  step = 'usable on a phone';
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.addInitScript(watcher);
  const small = await phone.newPage();
  watch(small);
  await signIn(small, cfg.keys.ops);
  await small.goto(`${cfg.base}/#/c/${id}`);
  await small.waitForSelector('#sent-total');
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the page fits the screen's width (overflows by ${overflow}px)`);
  await shot(small, 'campaign-phone');
  console.log('ok - ' + step);

  step = 'no script of the data ran anywhere; no CSP violation';
  check(await pwned(page) === undefined && await pwned(small) === undefined, 'window.__pwned was set');
  for (const p of [page, small]) {
    const v = await p.evaluate(() => window.__violations);
    check(v.length === 0, 'CSP violations: ' + v.join('; '));
  }
  check(problems.length === 0, problems.join('\n'));
  console.log('ok - ' + step);
} catch (e) {
  failed = true;
  console.log('not ok - ' + e.message);
  if (problems.length) console.log(problems.join('\n'));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
