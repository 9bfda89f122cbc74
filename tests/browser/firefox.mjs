// The dashboard in Debian's Firefox ESR (headless, WebDriver BiDi, driven by
// puppeteer-core): sign in, the campaign page, each locale's preview in a
// sandboxed frame, a recipient whose name is markup, a phone's width; no CSP
// violation and nothing from the data runs. The full flow (stages, approvals,
// halt counted at the sink) runs in chromium (dashboard.mjs).
//   node firefox.mjs CONFIG.json   (CONFIG as dashboard.mjs's)
import { readFileSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const id = cfg.campaign;
let step = '';

function check(ok, what) {
  if (!ok) throw new Error(`${step}: ${what}`);
}

// Records CSP violations and script dialogs in the page itself (before any of its scripts run).
const watcher = () => {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
  window.alert = window.confirm = window.prompt = (m) => { window.__violations.push('dialog: ' + m); };
};

const browser = await puppeteer.launch({ browser: 'firefox', executablePath: cfg.firefox || '/usr/bin/firefox-esr',
  headless: true });
let failed = false;
try {
  const page = await browser.newPage();
  await page.evaluateOnNewDocument(watcher);
  await page.setViewport({ width: 1280, height: 900 });

  step = 'sign in';
  await page.goto(cfg.base + '/');
  await page.waitForSelector('#sign-in:not([hidden])');
  await page.type('#key', cfg.keys.ops);
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForSelector(`a[href="#/c/${id}"]`, { timeout: 10000 });
  console.log('ok - ' + step);

  step = 'the campaign page: gates, progress, audit';
  await page.goto(`${cfg.base}/#/c/${id}`);
  await page.waitForSelector('#sent-total');
  await page.waitForSelector('#approvals');
  check(await page.$('#act-canary') !== null, 'the run buttons of a key with the campaigns scope');
  const total = Number(await page.$eval('#sent-total', (e) => e.dataset.total));
  check(total > 0, 'the recipients are counted: ' + total);
  console.log('ok - ' + step);

  step = 'preview: sandboxed frames, the hostile name as text';
  await page.goto(`${cfg.base}/#/c/${id}/preview`);
  await page.waitForSelector('.preview-block iframe');
  const sandboxes = await page.$$eval('.preview-block iframe', (fs) => fs.map((f) => f.getAttribute('sandbox')));
  check(sandboxes.length >= 2 && sandboxes.every((s) => s === ''), 'sandboxed frames: ' + JSON.stringify(sandboxes));
  await page.type('#preview-address', cfg.hostile_address);
  await page.click('#preview-lookup button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('.preview-block').length === 1);
  const text = await page.$eval('.preview-block pre', (e) => e.textContent);
  check(text.includes(cfg.hostile_name_text), 'the name is shown as text');
  await new Promise((r) => setTimeout(r, 500));  // the frame loads
  console.log('ok - ' + step);

  step = 'a phone';
  await page.setViewport({ width: 390, height: 844 });
  await page.goto(`${cfg.base}/#/c/${id}`);
  await page.waitForSelector('#sent-total');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the page fits the width (overflows by ${overflow}px)`);
  console.log('ok - ' + step);

  step = 'no CSP violation, nothing from the data ran';
  const seen = await page.evaluate(() => ({ v: window.__violations, pwned: window.__pwned }));
  check(seen.pwned === undefined, 'window.__pwned was set');
  check(seen.v.length === 0, seen.v.join('; '));
  console.log('ok - ' + step);
} catch (e) {
  failed = true;
  console.log('not ok - ' + e.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
