// Loads the dashboard's page of each campaign in Debian's chromium
// (playwright-core from tests/browser) N times, in turns, each load in a
// fresh browser context (an empty cache), and prints one JSON line per
// campaign: time to the campaign's first render (navigation start -> its
// counts on screen) and the bytes transferred until then (headers and
// encoded bodies).
//   node bench/dashboard_bench.mjs BASE KEY N CAMPAIGN...
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const [base, key, runs, ...ids] = process.argv.slice(2);

const signIn = await fetch(base + '/ui/sign-in', {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ key }),
});
if (!signIn.ok) throw new Error('sign-in: HTTP ' + signIn.status);
const cookie = signIn.headers.get('set-cookie').split(';')[0].split('=');

const sandbox = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: sandbox });
const results = new Map(ids.map((id) => [id, []]));
for (let i = 0; i < Number(runs); ++i) {
  for (const id of ids) {
    const context = await browser.newContext();
    await context.addCookies([{ name: cookie[0], value: cookie[1], url: base }]);
    const page = await context.newPage();
    const pending = [];
    let rendered = false;
    page.on('requestfinished', (req) => {
      if (!rendered) pending.push(req.sizes().then((s) => s.responseHeadersSize + s.responseBodySize));
    });
    await page.goto(`${base}/#/c/${id}`, { waitUntil: 'commit' });
    await page.waitForSelector('#sent-total', { timeout: 30000 });
    rendered = true;
    const ms = await page.evaluate(() => performance.now());
    const fcp = await page.evaluate(() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0);
    const total = Number(await page.getAttribute('#sent-total', 'data-total'));
    const bytes = (await Promise.all(pending)).reduce((a, b) => a + b, 0);
    results.get(id).push({ ms, fcp, bytes, requests: pending.length, total });
    await context.close();
  }
}
await browser.close();
for (const [id, out] of results) {
  const sorted = (k) => out.map((o) => o[k]).sort((a, b) => a - b);
  const median = (k) => sorted(k)[Math.floor(out.length / 2)];
  console.log(JSON.stringify({ campaign: id, recipients: out[0].total, runs: out.length,
    first_render_ms_median: Math.round(median('ms')), first_render_ms_max: Math.round(sorted('ms')[out.length - 1]),
    first_paint_ms_median: Math.round(median('fcp')), bytes_median: median('bytes'),
    bytes_max: sorted('bytes')[out.length - 1], requests: out[0].requests, each_ms: out.map((o) => Math.round(o.ms)) }));
}
