'use strict';
// blindcast dashboard: a small client of the service's own HTTP API (the
// same endpoints, scopes, gates and audit as a Bearer key), signed in with a
// session cookie. Everything that comes from the server enters the page as
// text (textContent, or setAttribute of names fixed here): never as HTML.
// The only HTML shown is a message preview, in an iframe the server
// sandboxes (no scripts, no network).
(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1500;
  let session = null;  // {name, scopes, csrf}
  let timer = null;
  const samples = new Map();  // campaign id -> [{t, lanes: {lane: sent}}] for the chart
  const COLORS = ['#2952cc', '#1d7a46', '#a86400', '#b42318', '#7a3db8', '#00838f', '#5d6677', '#c2185b'];

  // ---- DOM helpers

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const k of kids.flat()) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  const fmtInt = (n) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en'));
  const pct = (x) => (x === undefined || x === null ? '–' : (x * 100).toFixed(x < 0.01 ? 2 : 1) + '%');
  const when = (t) => (t ? new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '–');
  const has = (scope) => !!session && session.scopes.includes(scope);
  const enc = encodeURIComponent;

  function duration(seconds) {
    if (!(seconds >= 0) || !isFinite(seconds)) return '–';
    if (seconds < 90) return Math.round(seconds) + ' s';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min';
    return (seconds / 3600).toFixed(1) + ' h';
  }

  function card(title, ...kids) {
    return el('section', { class: 'card' }, el('h2', { text: title }), ...kids);
  }

  function table(headers, rows, numeric) {
    const num = new Set(numeric || []);
    return el('div', { class: 'scroll' }, el('table', {},
      el('thead', {}, el('tr', {}, headers.map((h, i) => el('th', { class: num.has(i) ? 'num' : null, text: h })))),
      el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c, i) =>
        el('td', { class: num.has(i) ? 'num' : null }, c)))))));
  }

  function badge(text, kind, id) {
    return el('span', { class: 'badge ' + (kind || ''), id }, text);
  }

  // ---- the API

  class ApiError extends Error {
    constructor(status, error) {
      super(error && error.message ? error.message : 'HTTP ' + status);
      this.status = status;
      this.code = error && error.code;
      this.reasons = error && error.reasons;
    }
  }

  // A GET started before the session was confirmed (the page's first data,
  // fetched beside /ui/session rather than after it).
  const early = new Map();

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
    if (method !== 'GET') {
      init.headers['X-CSRF-Token'] = session ? session.csrf : '';
      init.headers['Content-Type'] = 'application/json';
      init.body = body === undefined ? '' : JSON.stringify(body);
    }
    const started = method === 'GET' && early.get(path);
    early.delete(path);
    const r = await (started || fetch(path, init));
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401 && path !== '/ui/sign-in') {
      session = null;
      route();
      throw new ApiError(401, data && data.error);
    }
    if (!r.ok) throw new ApiError(r.status, data && data.error);
    return data;
  }

  // ---- sign-in

  function showSignedIn() {
    $('sign-in').hidden = !!session;
    $('nav').hidden = !session;
    $('sign-out').hidden = !session;
    $('nav-lookup').hidden = !has('admin');
    $('who').textContent = session ? `${session.name} · ${session.scopes.join(', ')}` : '';
  }

  $('sign-in-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('sign-in-error').textContent = '';
    try {
      session = await api('POST', '/ui/sign-in', { key: $('key').value.trim() });
      $('key').value = '';
      route();
    } catch (e) {
      $('sign-in-error').textContent = e.message;
    }
  });

  $('sign-out').addEventListener('click', async () => {
    try { await api('POST', '/ui/sign-out'); } catch (e) { /* signed out either way */ }
    session = null;
    route();
  });

  // ---- confirmation dialog: resolves with the reason (or '') on confirm, null on cancel

  function confirmAction({ title, body, reason, ok, danger, run }) {
    const d = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-body').replaceChildren(...(body || []));
    $('confirm-reason').hidden = !reason;
    $('confirm-reason-label').hidden = !reason;
    $('confirm-reason').required = !!reason;
    $('confirm-reason').value = '';
    $('confirm-error').textContent = '';
    $('confirm-ok').textContent = ok || 'Confirm';
    $('confirm-ok').className = danger ? 'danger' : 'primary';
    $('confirm-ok').disabled = false;
    return new Promise((resolve) => {
      const form = $('confirm-form');
      const cancel = () => { cleanup(); d.close(); resolve(null); };
      const submit = async (ev) => {
        ev.preventDefault();
        const why = $('confirm-reason').value.trim();
        if (reason && !why) {
          $('confirm-error').textContent = 'A reason is required.';
          return;
        }
        $('confirm-ok').disabled = true;
        try {
          const result = await run(why);
          cleanup();
          d.close();
          resolve(result);
        } catch (e) {
          $('confirm-ok').disabled = false;
          $('confirm-error').replaceChildren(e.message, ...(e.reasons || []).map((r) => el('div', {}, '· ' + r)));
        }
      };
      const cleanup = () => {
        form.removeEventListener('submit', submit);
        $('confirm-cancel').removeEventListener('click', cancel);
        d.removeEventListener('cancel', cancel);
      };
      form.addEventListener('submit', submit);
      $('confirm-cancel').addEventListener('click', cancel);
      d.addEventListener('cancel', cancel);
      d.showModal();
      (reason ? $('confirm-reason') : $('confirm-ok')).focus();
    });
  }

  // ---- pages

  function view(...kids) { $('view').replaceChildren(...kids.filter((k) => k !== null && k !== undefined)); }

  function poll(fn) {
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try { await fn(); } catch (e) { if (e.status !== 401) showProblem(e); } finally { busy = false; }
    };
    tick();
    timer = setInterval(tick, POLL_MS);
  }

  function showProblem(e) {
    let p = $('problem');
    if (!p) {
      p = el('p', { id: 'problem', class: 'error', role: 'alert' });
      $('view').prepend(p);
    }
    p.textContent = e.message;
  }

  function stageOf(st) {
    if (st.halted) return ['halted', 'bad'];
    if (st.run && st.run.running) return ['sending: ' + st.run.stage, 'warn'];
    if (st.running) return ['sending: ' + st.running.stage, 'warn'];
    const s = st.states || {};
    const ended = (s.sent || 0) + (s.bounced || 0) + (s.failed || 0) + (s.suppressed || 0) + (s.removed || 0);
    if (st.total > 0 && ended >= st.total) return ['done', 'ok'];
    const g = st.gates;
    if (!g) return ['draft', ''];
    if (g.open) return ['approved: the full stage may run', 'ok'];
    if (g.canary.passed) return ['canary passed: awaiting approval', ''];
    if (g.lint.clean) return ['linted: canary next', ''];
    return ['draft: lint it', ''];
  }

  async function campaignsPage() {
    const list = el('div', { class: 'grid' });
    view(el('h1', { text: 'Campaigns' }), list);
    poll(async () => {
      const { campaigns } = await api('GET', '/v1/campaigns');
      const rows = await Promise.all(campaigns.map(async (c) => {
        try { return [c, await api('GET', `/v1/campaigns/${enc(c.id)}`)]; } catch (e) { return [c, null]; }
      }));
      list.replaceChildren(...rows.map(([c, st]) => {
        if (!st) return card(c.id, el('p', { class: 'error', text: 'status unavailable' }));
        const [stage, kind] = stageOf(st);
        const sent = st.states.sent || 0;
        const all = (st.feedback || []).find((f) => f.lane === 'all');
        return el('section', { class: 'card' },
          el('h2', {}, el('a', { href: '#/c/' + enc(c.id), text: c.id })),
          el('p', {}, badge(stage, kind)),
          progressBar(sent, st.total),
          el('p', { class: 'muted' }, `${fmtInt(sent)} of ${fmtInt(st.total)} sent`,
            all ? ` · bounces ${pct(all.bounce_rate)} · complaints ${pct(all.complaint_rate)}` : ''));
      }));
      if (!campaigns.length) list.replaceChildren(el('p', { class: 'muted', text: 'No campaigns on this node.' }));
    });
  }

  function progressBar(done, total) {
    const f = total > 0 ? Math.min(1, done / total) : 0;
    return el('div', { class: 'bar-track', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total,
      'aria-valuenow': done }, el('div', { class: 'bar-fill', 'data-fill': f }));
  }

  // Inline styles are not allowed (CSP): bar widths are set through the CSSOM.
  function applyFills(root) {
    for (const e of root.querySelectorAll('[data-fill]')) e.style.width = (Number(e.dataset.fill) * 100).toFixed(1) + '%';
  }

  async function campaignPage(id) {
    const root = el('div', {});
    view(root);
    poll(async () => {
      const st = await api('GET', `/v1/campaigns/${enc(id)}`);
      record(id, st);
      root.replaceChildren(...renderCampaign(id, st));
      applyFills(root);
    });
  }

  function record(id, st) {
    const lanes = {};
    for (const [lane, l] of Object.entries(st.lanes || {})) lanes[lane] = l.sent || 0;
    const list = samples.get(id) || [];
    list.push({ t: Date.now(), lanes });
    while (list.length > 400) list.shift();
    samples.set(id, list);
  }

  function renderCampaign(id, st) {
    const [stage, kind] = stageOf(st);
    const out = [el('h1', {}, id, badge(stage, kind, 'stage'))];
    if (st.halted) {
      out.push(el('div', { class: 'banner bad', id: 'halted', role: 'alert' },
        el('strong', { text: `Halted (${st.halted.kind})` }), ` by ${st.halted.by} at ${when(st.halted.at)}: `,
        st.halted.reason));
    }
    out.push(el('div', { class: 'grid' }, actionsCard(id, st), gatesCard(st), progressCard(id, st),
      feedbackCard(st), reasonsCard(st), auditCard(st)));
    return out;
  }

  function actionsCard(id, st) {
    const running = !!(st.run && st.run.running);
    const buttons = [];
    if (has('campaigns')) {
      for (const stage of ['test', 'canary', 'full']) {
        buttons.push(el('button', { id: 'act-' + stage, type: 'button', disabled: running || !!st.halted,
          onclick: () => runStage(id, stage) }, `Run ${stage}`));
      }
    }
    if (has('approve')) {
      buttons.push(el('button', { id: 'act-approve', type: 'button', onclick: () => approve(id, st) }, 'Approve…'));
    }
    if (has('campaigns')) {
      if (st.halted) {
        buttons.push(el('button', { id: 'act-release', type: 'button', onclick: () => release(id) }, 'Release…'));
      } else {
        buttons.push(el('button', { id: 'act-halt', type: 'button', class: 'danger', onclick: () => halt(id) }, 'Halt…'));
      }
    }
    return card('Actions',
      st.run ? el('p', { class: 'muted', id: 'run' }, `Last run here: ${st.run.stage} by ${st.run.by} — ${st.run.result}`) : null,
      buttons.length ? el('div', { class: 'actions' }, buttons)
        : el('p', { class: 'muted', text: 'This key may only read.' }),
      el('p', {}, el('a', { href: `#/c/${enc(id)}/preview`, id: 'open-preview', text: 'Preview each locale →' })));
  }

  function gatesCard(st) {
    const g = st.gates;
    if (!g) return card('Gates', el('p', { class: 'muted', text: 'The campaign cannot be read; run blindcast lint.' }));
    const a = g.approvals;
    return card('Gates',
      el('ul', { class: 'plain' },
        el('li', {}, badge(g.lint.clean ? 'clean' : 'not clean', g.lint.clean ? 'ok' : 'bad'), ' lint ',
          el('span', { class: 'muted', text: g.lint.detail || '' })),
        el('li', {}, badge(g.canary.passed ? 'passed' : 'not passed', g.canary.passed ? 'ok' : 'warn'), ' canary ',
          el('span', { class: 'muted', text: `${g.canary.why || ''} (${fmtInt(g.canary.sent)} of ${fmtInt(g.canary.size)} sent, ${fmtInt(g.canary.bounced)} bounced)` })),
        el('li', { id: 'approvals' }, badge(`${a.by.length} of ${a.required}`, a.by.length >= a.required ? 'ok' : 'warn'),
          ' approvals ', el('span', { text: a.by.length ? a.by.join(', ') : 'none yet' }),
          a.voided ? el('span', { class: 'muted', text: ` (${a.voided} voided by a content change)` }) : null)),
      el('p', { class: 'muted mono', text: 'content ' + (st.content_hash || '').slice(0, 16) }),
      (g.closed || []).length ? el('div', {}, el('strong', { text: 'Closed:' }),
        el('ul', {}, g.closed.map((c) => el('li', { text: c })))) : el('p', {}, badge('all gates open', 'ok')));
  }

  function progressCard(id, st) {
    const sent = st.states.sent || 0;
    const lanes = Object.entries(st.lanes || {});
    const rates = (st.running && st.running.lanes) || {};
    const rows = lanes.map(([lane, l]) => {
      const done = (l.sent || 0) + (l.bounced || 0) + (l.failed || 0) + (l.suppressed || 0) + (l.removed || 0);
      const rate = rates[lane] ? rates[lane].rate_per_second : 0;
      return [lane, el('span', {}, `${fmtInt(l.sent || 0)} / ${fmtInt(l.total)}`), progressBar(l.sent || 0, l.total),
        fmtInt(l.deferred || 0), fmtInt((l.bounced || 0) + (l.failed || 0)),
        rate ? rate.toFixed(1) : '–', rate ? duration((l.total - done) / rate) : '–'];
    });
    const r = st.running;
    return el('section', { class: 'card wide' }, el('h2', { text: 'Progress' }),
      el('p', { id: 'sent-total', 'data-sent': sent, 'data-total': st.total },
        el('strong', { text: `${fmtInt(sent)} of ${fmtInt(st.total)} sent` }),
        r ? ` · ${r.rate_per_second.toFixed(1)}/s · ETA ${duration(r.eta_seconds)} · ${fmtInt(r.in_flight)} on the wire` : '',
        st.possible_duplicates ? ` · ${fmtInt(st.possible_duplicates)} possible duplicates (crash recovery)` : ''),
      progressBar(sent, st.total),
      chart(id, lanes.map(([lane]) => lane)),
      table(['lane', 'sent / total', '', 'deferred', 'bounced+failed', 'per s', 'ETA'], rows, [3, 4, 5, 6]));
  }

  // Sent per lane over the last minutes, from what this page has seen.
  function chart(id, lanes) {
    const pts = samples.get(id) || [];
    const W = 600, H = 140, P = 4;
    const s = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
      'aria-label': 'messages sent per lane over time' });
    if (pts.length >= 2) {
      const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
      let max = 1;
      for (const p of pts) for (const v of Object.values(p.lanes)) max = Math.max(max, v);
      lanes.forEach((lane, i) => {
        const d = pts.map((p) => {
          const x = P + ((p.t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
          const y = H - P - ((p.lanes[lane] || 0) / max) * (H - 2 * P);
          return `${x.toFixed(1)},${y.toFixed(1)}`;
        }).join(' ');
        s.append(svg('polyline', { points: d, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2 }));
      });
      const label = svg('text', { x: P + 2, y: 12 });
      label.textContent = `${fmtInt(max)} · last ${duration((t1 - t0) / 1000)}`;
      s.append(label);
    }
    return el('div', {}, s, el('div', { class: 'legend' }, lanes.map((lane, i) =>
      el('span', {}, el('span', { class: 'swatch', 'data-color': COLORS[i % COLORS.length] }), lane))));
  }

  function feedbackCard(st) {
    const lim = st.limits || {};
    const rows = (st.feedback || []).map((f) => [f.lane, fmtInt(f.sent),
      badge(pct(f.bounce_rate), f.bounce_rate > lim.max_bounce_rate ? 'bad' : 'ok'),
      badge(pct(f.complaint_rate), f.complaint_rate > lim.max_complaint_rate ? 'bad' : 'ok'),
      fmtInt(f.soft)]);
    return card('Bounces and complaints',
      el('p', { class: 'muted', text: `limits: bounces ${pct(lim.max_bounce_rate)}, complaints ${pct(lim.max_complaint_rate)}` }),
      rows.length ? table(['lane', 'sent', 'bounce rate', 'complaint rate', 'soft'], rows, [1, 4])
        : el('p', { class: 'muted', text: 'Nothing sent yet.' }));
  }

  function reasonsCard(st) {
    const rows = (st.top_reasons || []).map((r) => [fmtInt(r.count), r.state, el('span', { class: 'mono', text: r.reason })]);
    return card('Deferral and bounce reasons',
      rows.length ? table(['count', 'state', 'reply'], rows, [0]) : el('p', { class: 'muted', text: 'None.' }));
  }

  function auditCard(st) {
    const rows = (st.audit || []).slice().reverse().map((e) => [when(e.at), e.kind, e.actor, e.detail]);
    return el('section', { class: 'card wide' }, el('h2', { text: 'Audit log' }),
      table(['at', 'what', 'who', 'detail'], rows));
  }

  // ---- actions (the same API calls as a script's; the service checks the key's scope again)

  function refresh() { route(); }

  async function runStage(id, stage) {
    const what = { test: 'sends the samples to the seed list only',
      canary: 'sends to a random sample of real recipients and measures bounces',
      full: 'sends to every remaining recipient (the gates must be open)' }[stage];
    const done = await confirmAction({ title: `Run the ${stage} stage of ${id}?`, body: [el('p', { text: `It ${what}.` })],
      ok: `Run ${stage}`, run: () => api('POST', `/v1/campaigns/${enc(id)}/send`, { stage }) });
    if (done) refresh();
  }

  async function approve(id, st) {
    let pv;
    try {
      pv = await api('POST', `/v1/campaigns/${enc(id)}/preview`, {});
    } catch (e) {
      showProblem(e);
      return;
    }
    const body = [
      el('p', {}, 'You approve exactly this content:'),
      el('p', { class: 'mono', id: 'approve-hash', text: pv.content_hash }),
      el('p', { class: 'muted', text: `Approvals so far: ${st.gates ? st.gates.approvals.by.join(', ') || 'none' : '?'}` }),
      table(['locale', 'subject', 'guard'], pv.previews.map((p) => [p.locale, p.subject,
        p.guard ? badge('blocked: ' + p.guard, 'bad') : badge('passes', 'ok')])),
      el('p', {}, el('a', { href: `#/c/${enc(id)}/preview`, text: 'Open the full preview first' })),
    ];
    const done = await confirmAction({ title: `Approve ${id}?`, body, ok: 'Approve this content',
      run: () => api('POST', `/v1/campaigns/${enc(id)}/approve`, { content_hash: pv.content_hash }) });
    if (done) refresh();
  }

  async function halt(id) {
    const done = await confirmAction({ title: `Halt ${id}?`,
      body: [el('p', { text: 'Every node stops starting messages within a second; messages on the wire finish.' })],
      reason: true, ok: 'Halt now', danger: true,
      run: (reason) => api('POST', `/v1/campaigns/${enc(id)}/halt`, { reason }) });
    if (done) refresh();
  }

  async function release(id) {
    const done = await confirmAction({ title: `Release the halt of ${id}?`,
      body: [el('p', { text: 'Sending may start again (a stage must be run).' })], ok: 'Release',
      run: () => api('POST', `/v1/campaigns/${enc(id)}/release`, {}) });
    if (done) refresh();
  }

  // ---- preview

  function previewBlock(p) {
    return el('section', { class: 'card wide preview-block' },
      el('h2', {}, `${p.locale} · `, el('span', { text: p.subject })),
      el('p', { class: 'muted', text: 'built from ' + p.source }),
      p.guard ? el('p', {}, badge('the privacy guard blocks this: ' + p.guard, 'bad')) : el('p', {}, badge('the privacy guard passes it', 'ok')),
      el('details', {}, el('summary', { text: 'Headers' }), table(['header', 'value'], p.headers.map(([n, v]) => [n, el('span', { class: 'mono', text: v })]))),
      p.html_url ? el('iframe', { class: 'preview', sandbox: '', referrerpolicy: 'no-referrer', src: p.html_url,
        title: 'HTML part of ' + p.locale }) : null,
      el('h2', { text: 'Plain text part' }), el('pre', { text: p.text || '(none)' }));
  }

  async function previewPage(id) {
    const out = el('div', {});
    const form = el('form', { id: 'preview-lookup' },
      el('label', { for: 'preview-address', text: "One recipient's own message" }),
      el('input', { id: 'preview-address', type: 'email', required: true, autocomplete: 'off', spellcheck: 'false' }),
      el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Show' })));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await showPreviews(id, out, { recipient: $('preview-address').value.trim() });
    });
    view(el('h1', {}, el('a', { href: '#/c/' + enc(id), text: id }), ' · preview'),
      has('admin') ? el('section', { class: 'card' }, form) : null, out);
    await showPreviews(id, out, {});
  }

  async function showPreviews(id, out, body) {
    out.replaceChildren(el('p', { class: 'muted', text: 'Rendering…' }));
    try {
      const pv = await api('POST', `/v1/campaigns/${enc(id)}/preview`, body);
      out.replaceChildren(el('p', { class: 'mono', text: 'content ' + pv.content_hash }),
        el('div', { class: 'grid' }, pv.previews.map(previewBlock)));
    } catch (e) {
      out.replaceChildren(el('p', { class: 'error', role: 'alert', text: e.message }));
    }
  }

  // ---- transactional streams

  async function streamsPage() {
    const root = el('div', { class: 'grid' });
    view(el('h1', { text: 'Transactional streams' }), root);
    poll(async () => {
      const { streams } = await api('GET', '/v1/streams');
      root.replaceChildren(...streams.map((s) => el('section', { class: 'card' },
        el('h2', {}, s.name, ' ', s.held ? badge('held', 'bad') : badge('approved', 'ok'), s.security ? badge('security', '') : null),
        s.held ? el('p', { class: 'error', text: s.held }) : null,
        el('p', {}, `last 24 h: ${Object.entries(s.last_24h).map(([k, v]) => `${fmtInt(v)} ${k}`).join(' · ') || 'none'}`),
        el('p', {}, `latency (accepted → relay's 2xx, since start): p50 ≤ ${s.latency_p50 ? s.latency_p50 + ' s' : '–'} · p99 ≤ ${s.latency_p99 ? s.latency_p99 + ' s' : '–'}`),
        s.failures.length ? table(['at', 'to', 'status', 'reply'], s.failures.map((f) =>
          [when(f.at), f.to, el('span', {}, f.status, el('br'), el('span', { class: 'mono muted', text: f.id })),
            el('span', { class: 'reply', text: f.reply })]))
          : el('p', { class: 'muted', text: 'No recent failures.' }))));
      if (!streams.length) root.replaceChildren(el('p', { class: 'muted', text: 'No streams on this node.' }));
    });
  }

  // ---- recipient lookup (admin)

  function lookupPage() {
    const out = el('div', {});
    const form = el('form', { id: 'lookup-form' },
      el('label', { for: 'lookup-address', text: 'Did this customer get it? Every message to one address' }),
      el('input', { id: 'lookup-address', type: 'email', required: true, autocomplete: 'off', spellcheck: 'false' }),
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', text: 'Look up' })));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      out.replaceChildren(el('p', { class: 'muted', text: 'Looking up…' }));
      try {
        const r = await api('POST', '/v1/lookup', { address: $('lookup-address').value.trim() });
        out.replaceChildren(
          el('p', {}, el('strong', { text: r.address }), ' · ',
            r.suppressed ? badge(`suppressed: ${r.suppressed.reason} (${r.suppressed.category})`, 'bad') : badge('not suppressed', 'ok')),
          card('Campaigns', r.campaigns.length ? table(['campaign', 'state', 'attempts', 'last reply', 'at', 'lane'],
            r.campaigns.map((c) => [c.id, badge(c.state + (c.possible_duplicate ? ' (possible duplicate)' : ''), c.state === 'sent' ? 'ok' : ''),
              fmtInt(c.attempts), c.reply, when(c.updated_at), c.lane]), [2])
            : el('p', { class: 'muted', text: 'Not in any campaign on this node.' })),
          card('Transactional messages', r.messages.length ? table(['created', 'message', 'stream', 'status', 'attempts'],
            r.messages.map((m) => [m.created_at, el('span', { class: 'mono', text: m.id }), m.stream,
              badge(m.status, m.status === 'sent' ? 'ok' : ''),
              el('ul', { class: 'plain' }, m.attempts.map((a) => el('li', {}, `${a.at}: `, a.reply)))]))
            : el('p', { class: 'muted', text: 'No transactional messages to this address.' })));
      } catch (e) {
        out.replaceChildren(el('p', { class: 'error', role: 'alert', text: e.message }));
      }
    });
    view(el('h1', { text: 'Recipient lookup' }), el('section', { class: 'card' }, form), out);
  }

  // ---- routing

  function route() {
    if (timer) clearInterval(timer);
    timer = null;
    showSignedIn();
    if (!session) {
      view();
      $('key').focus();
      return;
    }
    const h = location.hash || '#/';
    let m;
    const decode = (x) => { try { return decodeURIComponent(x); } catch (e) { return ''; } };
    if ((m = h.match(/^#\/c\/([^/]+)\/preview$/)) && decode(m[1])) return previewPage(decode(m[1]));
    if ((m = h.match(/^#\/c\/([^/]+)$/)) && decode(m[1])) return campaignPage(decode(m[1]));
    if (h === '#/streams') return streamsPage();
    if (h === '#/lookup' && has('admin')) return lookupPage();
    return campaignsPage();
  }

  window.addEventListener('hashchange', route);
  // Swatch colours through the CSSOM (no inline styles under the CSP).
  new MutationObserver(() => {
    for (const e of document.querySelectorAll('.swatch[data-color]')) e.style.background = e.dataset.color;
  }).observe($('view'), { childList: true, subtree: true });

  (async () => {
    const m = (location.hash || '').match(/^#\/c\/([^/]+)$/);
    if (m) {
      const path = `/v1/campaigns/${m[1]}`;
      early.set(path, fetch(path, { credentials: 'same-origin', cache: 'no-store' }));
    }
    try {
      const r = await fetch('/ui/session', { credentials: 'same-origin', cache: 'no-store' });
      session = r.ok ? await r.json() : null;
    } catch (e) {
      session = null;
    }
    route();
  })();
})();
