// storyflow's status page: plain JavaScript, no build step, no dependencies.
//
// Invariants:
// - User and server text only ever reaches the page as text: through h()
//   (createTextNode / textContent) or an attribute value. Nothing here
//   assigns innerHTML, outerHTML or insertAdjacentHTML.
// - Every API error is shown in words: the contract's error.message and
//   error.hint, never swallowed.
// - A hidden tab does not poll; it catches up on visibilitychange.
// - The token (for servers started with --token) lives in sessionStorage
//   only and is sent as `Authorization: Bearer <token>`.
'use strict';

const TOKEN_KEY = 'storyflow.token';
const FAST_MS = 1000; // while a run is pending or running
const SLOW_MS = 10000; // otherwise: notices runs started from the shell
const HEALTH_MS = 5000;
const STORIES_MS = 15000;
const RUN_LIMIT = 100;
const STORY_LIMIT = 500;

const state = {
  stories: [],
  storiesLoaded: false,
  storiesAt: 0,
  storiesDirty: false,
  refreshSoon: false,
  runs: [],
  runsLoaded: false,
  health: null,
  orphans: null,
  healthAt: 0,
  metrics: null,
  filter: 'all',
  view: { name: 'dashboard' },
  story: null, // the story view: { id, story, runs, chapters, error }
  run: null, // the run view: { id, run, events, error, diagnosis }
  busy: new Set(), // keys of actions in flight, to disable their buttons
  flash: null, // id of a story to highlight once
  updatedAt: null,
};

// ---------------------------------------------------------------- helpers

/** Creates an element. Strings among the children become text nodes. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (selector) => document.querySelector(selector);

function plural(n, one, many) {
  return `${n.toLocaleString()} ${n === 1 ? one : many || one + 's'}`;
}

function bytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function parseTime(iso) {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? null : t;
}

function ago(iso) {
  const t = parseTime(iso);
  if (t === null) return '—';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
}

function fullTime(iso) {
  const t = parseTime(iso);
  return t === null ? '' : new Date(t).toLocaleString();
}

function clockTime(iso) {
  const t = parseTime(iso);
  if (t === null) return '—';
  const d = new Date(t);
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === new Date().toDateString()
    ? time
    : `${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })} ${time}`;
}

/** A <time> element that shows "3 min ago" and the full time on hover. */
function timeAgo(iso, prefix) {
  return h('time', { datetime: iso || null, title: fullTime(iso) || null }, prefix ? `${prefix} ${ago(iso)}` : ago(iso));
}

function shortId(id) {
  return String(id || '').slice(0, 8);
}

const isActive = (run) => run.status === 'pending' || run.status === 'running';
const canRetry = (run) => run.status === 'failed' || run.status === 'cancelled';

const SOURCE_LABEL = {
  explicit: 'set by you',
  outline: 'from the outline',
  default: 'default count',
};

// -------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(body, status) {
    super(body.message || `the server answered ${status}`);
    this.code = body.code || `HTTP_${status}`;
    this.status = body.status || status;
    this.hint = body.hint || '';
    this.details = body.details || {};
  }
}

let tokenDeclined = false;
let tokenPrompt = null;

function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

const REQUEST_TIMEOUT_MS = 20000;

// One request at a time: gentle on a single-user server (each connection
// holds one of its threads), and a page that polls every second never
// opens a burst of connections.
let lane = Promise.resolve();

function inLane(task) {
  const run = lane.then(task, task);
  lane = run.catch(() => {});
  return run;
}

async function send(method, path, body, sent) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (sent) headers.Authorization = `Bearer ${sent}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  try {
    const resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
      signal: abort.signal,
    });
    const text = await resp.text();
    return { resp, text };
  } catch (err) {
    if (abort.signal.aborted) {
      throw new ApiError(
        {
          code: 'TIMEOUT',
          message: `storyflow did not answer ${method} ${path} within ${REQUEST_TIMEOUT_MS / 1000} s`,
          hint: 'the server may be overloaded or stuck; its log says more',
        },
        0,
      );
    }
    throw new ApiError(
      {
        code: 'OFFLINE',
        message: `storyflow is not answering at ${location.host}`,
        hint: 'check that `storyflow serve` is still running; this page keeps trying',
      },
      0,
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One API call. Resolves with the parsed JSON (null for 204), rejects with
 * an ApiError carrying the contract's code, message and hint.
 */
async function api(method, path, body) {
  for (;;) {
    const sent = token();
    const { resp, text } = await inLane(() => send(method, path, body, sent));
    if (resp.status === 401 && !tokenDeclined) {
      if (token() !== sent) continue; // a new token arrived meanwhile
      if (sent) sessionStorage.removeItem(TOKEN_KEY);
      if (await askForToken(Boolean(sent))) continue;
      tokenDeclined = true;
    }
    if (resp.status === 204) return null;
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!resp.ok) {
      const error = data && data.error ? data.error : { message: `the server answered ${resp.status} ${resp.statusText}` };
      throw new ApiError(error, resp.status);
    }
    return data;
  }
}

/** Asks for the server's token once, however many requests were refused. */
function askForToken(refused) {
  if (tokenPrompt) return tokenPrompt;
  tokenPrompt = new Promise((resolve) => {
    const dialog = $('#token-dialog');
    const input = $('#token-input');
    $('#token-error').textContent = refused ? 'The server refused that token. Check it and try again.' : '';
    input.value = '';
    let settled = false;
    const finish = (ok) => {
      if (settled) return;
      settled = true;
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(ok);
    };
    const form = $('#token-form');
    const cancel = $('#token-cancel');
    const onSubmit = (ev) => {
      ev.preventDefault();
      const value = input.value.trim();
      if (!value) {
        $('#token-error').textContent = 'Enter the token given to `storyflow serve --token`.';
        input.focus();
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      finish(true);
    };
    const onCancel = (ev) => {
      ev.preventDefault();
      finish(false);
    };
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    input.focus();
  }).finally(() => {
    tokenPrompt = null;
  });
  return tokenPrompt;
}

// ------------------------------------------------------ messages and errors

/** The contract's error, in words: what failed, the message, the hint. */
function errorView(err, context) {
  const error = err instanceof ApiError ? err : new ApiError({ code: 'ERROR', message: String((err && err.message) || err) }, 0);
  const hint = error.hint || defaultHint(error);
  return h(
    'div',
    { class: 'api-error', role: 'alert', dataset: { code: error.code } },
    h('p', { class: 'error-title' }, context ? h('span', { class: 'error-context' }, context) : null, h('code', { class: 'error-code' }, error.code)),
    h('p', { class: 'error-message' }, error.message),
    hint ? h('p', { class: 'error-hint' }, hint) : null,
  );
}

/** For the codes whose contract body carries no hint. */
function defaultHint(error) {
  if (error.code === 'CONFLICT' && error.details && error.details.run_id) {
    return 'wait for that run to finish or cancel it, then try again';
  }
  return '';
}

function notify(kind, content, options = {}) {
  const box = $('#notices');
  const key = options.key || null;
  if (key) {
    for (const old of box.querySelectorAll('.notice')) if (old.dataset.key === key) old.remove();
  }
  const notice = h(
    'div',
    { class: `notice notice-${kind}`, dataset: key ? { key } : {} },
    h('div', { class: 'notice-body' }, content),
    h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss', text: '×', onclick: () => notice.remove() }),
  );
  box.appendChild(notice);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (options.timeout) setTimeout(() => notice.remove(), options.timeout);
  return notice;
}

function showError(err, context) {
  const key = `${context}|${err && err.code}|${err && err.message}`;
  const content = [errorView(err, context)];
  if (err && err.details && err.details.run_id && err.code === 'CONFLICT') {
    content.push(h('a', { class: 'btn small', href: `#run/${encodeURIComponent(err.details.run_id)}`, text: 'Open that run' }));
  }
  notify('error', content, { key });
}

function toast(text) {
  notify('ok', h('p', {}, text), { timeout: 4000 });
}

/** The banner says the page itself cannot refresh (server gone, token refused). */
function showBanner(err) {
  const banner = $('#banner');
  const actions = h('div', { class: 'banner-actions' });
  if (err.code === 'UNAUTHORIZED') {
    actions.appendChild(
      h('button', {
        type: 'button',
        class: 'btn small',
        text: 'Enter token',
        onclick: () => {
          tokenDeclined = false;
          refreshNow();
        },
      }),
    );
  } else {
    actions.appendChild(h('span', { class: 'muted' }, 'This page keeps trying.'));
    actions.appendChild(h('button', { type: 'button', class: 'btn small', text: 'Try now', onclick: refreshNow }));
  }
  banner.replaceChildren(errorView(err, 'Cannot refresh the page'), actions);
  banner.hidden = false;
  setPill('offline', err.code === 'UNAUTHORIZED' ? 'token needed' : 'not connected');
}

function hideBanner() {
  $('#banner').hidden = true;
}

/** An in-page confirmation (not window.confirm): resolves true or false. */
function confirmDialog({ title, body, confirmLabel }) {
  return new Promise((resolve) => {
    const dialog = $('#confirm-dialog');
    const ok = $('#confirm-ok');
    const cancel = $('#confirm-cancel');
    $('#confirm-title').textContent = title;
    $('#confirm-body').replaceChildren(...body.filter(Boolean).map((line) => h('p', {}, line)));
    ok.textContent = confirmLabel;
    let settled = false;
    const finish = (answer) => {
      if (settled) return;
      settled = true;
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onOk = () => finish(true);
    const onCancel = (ev) => {
      ev.preventDefault();
      finish(false);
    };
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    cancel.focus();
  });
}

// ------------------------------------------------------------- data loading

function storyById(id) {
  return state.stories.find((s) => s.id === id) || null;
}

function latestRunOf(storyId) {
  return state.runs.find((r) => r.story_id === storyId) || null;
}

function anyActive() {
  return (
    state.runs.some(isActive) ||
    Boolean(state.run && state.run.run && isActive(state.run.run)) ||
    Boolean(state.story && state.story.runs && state.story.runs.some(isActive))
  );
}

async function loadStories() {
  const data = await api('GET', `/api/stories?limit=${STORY_LIMIT}`);
  state.stories = data.stories || [];
  state.storiesLoaded = true;
  state.storiesAt = Date.now();
  state.storiesDirty = false;
}

async function loadRuns() {
  const data = await api('GET', `/api/runs?limit=${RUN_LIMIT}`);
  const before = new Map(state.runs.map((r) => [r.id, r.status]));
  state.runs = data.runs || [];
  // A run that appeared or changed status: the stories' last runs and the
  // health summary change with it.
  if (state.runsLoaded && state.runs.some((r) => before.get(r.id) !== r.status)) {
    state.healthAt = 0;
    state.refreshSoon = true;
    if (state.runs.some((r) => !before.has(r.id))) state.storiesDirty = true;
  }
  state.runsLoaded = true;
}

async function loadHealth() {
  const [health, orphans] = await Promise.all([api('GET', '/api/health'), api('GET', '/api/diagnostics/orphans')]);
  state.health = health;
  state.orphans = orphans;
  state.healthAt = Date.now();
}

async function loadMetrics() {
  state.metrics = await api('GET', '/api/metrics');
}

// ---------------------------------------------------------------- polling

let timer = 0;
let inFlight = false;
let again = false;

/** Arms the next refresh, if the tab is visible. */
function schedule() {
  clearTimeout(timer);
  timer = 0;
  if (document.hidden) {
    setPolling('paused');
    return;
  }
  const fast = anyActive();
  timer = setTimeout(refreshNow, fast ? FAST_MS : SLOW_MS);
  setPolling(fast ? 'fast' : 'slow');
}

/** Shown on <html data-polling> for anyone (and any test) to see. */
function setPolling(mode) {
  document.documentElement.dataset.polling = mode;
}

async function refreshNow() {
  clearTimeout(timer);
  timer = 0;
  if (document.hidden) return;
  if (inFlight) {
    again = true;
    return;
  }
  inFlight = true;
  try {
    await refresh();
  } finally {
    inFlight = false;
    if (again) {
      again = false;
      setTimeout(refreshNow, 0);
    } else {
      schedule();
    }
  }
}

async function refresh() {
  const now = Date.now();
  // In order of importance: the requests go out one at a time, and the
  // page is drawn again as each answer arrives.
  const jobs = [];
  if (state.view.name === 'story') jobs.push(refreshStoryView());
  if (state.view.name === 'run') jobs.push(refreshRunView());
  if (!state.storiesLoaded || state.storiesDirty || now - state.storiesAt > STORIES_MS) jobs.push(loadStories());
  jobs.push(loadRuns());
  if (now - state.healthAt > HEALTH_MS) jobs.push(loadHealth());
  jobs.push(loadMetrics());
  const results = await Promise.allSettled(jobs.map((job) => job.then(render)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    showBanner(failed.reason);
  } else {
    hideBanner();
    state.updatedAt = new Date();
  }
  // Something changed under us: catch up now rather than at the next tick.
  if (state.storiesDirty || state.refreshSoon) again = true;
  state.refreshSoon = false;
  render();
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    clearTimeout(timer);
    timer = 0;
    // A refresh in flight finishes, then schedule() sees the hidden tab.
    if (!inFlight) setPolling('paused');
  } else {
    refreshNow();
  }
});

// ------------------------------------------------------------------ render

function render() {
  renderPill();
  if (state.view.name === 'dashboard') {
    renderHealth();
    renderMetrics();
    renderStories();
    renderRuns();
  } else if (state.view.name === 'story') {
    renderStoryView();
  } else if (state.view.name === 'run') {
    renderRunView();
  }
  const active = state.runs.filter(isActive);
  const running = active.find((r) => r.status === 'running');
  document.title = running ? `${running.progress}% · storyflow` : active.length ? `${active.length} queued · storyflow` : 'storyflow';
  const refreshed = state.updatedAt ? `updated ${state.updatedAt.toLocaleTimeString()}` : 'connecting…';
  $('#footer-refresh').textContent = `${refreshed} · ${anyActive() ? 'live' : `every ${SLOW_MS / 1000} s`}`;
  if (state.health && state.health.version) $('#footer-version').textContent = `storyflow ${state.health.version}`;
}

function setPill(status, text) {
  const pill = $('#health-pill');
  pill.dataset.status = status;
  $('#health-pill-text').textContent = text;
}

function renderPill() {
  if (!$('#banner').hidden) return;
  const health = state.health;
  if (!health) return;
  const active = state.runs.filter(isActive);
  const running = active.filter((r) => r.status === 'running').length;
  const queued = active.length - running;
  const parts = [health.status === 'ok' ? 'healthy' : health.status];
  if (running) parts.push(`${running} running`);
  if (queued) parts.push(`${queued} queued`);
  setPill(health.status === 'ok' ? 'ok' : 'degraded', parts.join(' · '));
}

function stat(label, value, options = {}) {
  return h(
    'div',
    { class: `stat${options.tone ? ` tone-${options.tone}` : ''}`, dataset: options.name ? { stat: options.name } : {} },
    h('dt', {}, label),
    h('dd', { title: options.title || null }, h('span', { class: 'stat-value' }, value), options.sub ? h('span', { class: 'stat-sub' }, options.sub) : null),
  );
}

function degradedReason(health) {
  if (health.disk_full_since) return `disk full since ${ago(health.disk_full_since)}: writes wait until space is freed`;
  if (health.stuck_runs) return 'runs are stuck';
  return 'the last sweep found problems';
}

function renderHealth() {
  const health = state.health;
  const dl = $('#health-stats');
  if (!health) {
    dl.replaceChildren(stat('Status', '…'));
    return;
  }
  const sweep = health.last_sweep;
  const orphans = state.orphans ? state.orphans.count : null;
  // A live count in GET /api/health: no full integrity check to poll.
  const stuck = typeof health.stuck_runs === 'number' ? health.stuck_runs : null;
  const runs = health.runs || {};
  const active = (runs.running || 0) + (runs.pending || 0);
  const { uptime_s: _uptime, ...lasting } = health;
  const sig = JSON.stringify([lasting, orphans, sweep && ago(sweep.started_at)]);
  if (dl.sig === sig) return;
  dl.sig = sig;
  dl.replaceChildren(
    stat('Status', health.status === 'ok' ? 'Healthy' : 'Degraded', {
      name: 'status',
      tone: health.status === 'ok' ? 'good' : 'warn',
      sub: health.status === 'ok' ? `${health.generator} · ${plural(health.workers, 'worker')}` : degradedReason(health),
    }),
    stat('Last sweep', sweep ? timeAgo(sweep.started_at) : 'not yet', {
      name: 'last-sweep',
      sub: sweep ? `${sweep.duration_ms} ms` : 'runs at start',
    }),
    stat('Orphaned runs', orphans === null ? '—' : orphans.toLocaleString(), {
      name: 'orphans',
      tone: orphans ? 'bad' : null,
      sub: orphans ? 'try the orphan dry-run' : 'none',
    }),
    stat('Stuck runs', stuck === null ? '—' : stuck.toLocaleString(), {
      name: 'stuck',
      tone: stuck ? 'warn' : null,
      sub: stuck === null ? 'not reported' : stuck ? 'running with an expired lease' : 'none',
    }),
    stat('Database', bytes(health.database && health.database.size_bytes), {
      name: 'database',
      title: health.database ? health.database.path : null,
      sub: health.database ? `schema ${health.database.schema_version}` : null,
    }),
    stat('Active runs', active.toLocaleString(), {
      name: 'active',
      sub: `${(runs.completed || 0).toLocaleString()} completed · ${(runs.failed || 0).toLocaleString()} failed`,
    }),
  );
}

function renderMetrics() {
  const m = state.metrics;
  const dl = $('#metrics-stats');
  if (!m) {
    dl.replaceChildren(stat('Cache hit rate', '…'));
    return;
  }
  const cache = m.chapter_count_cache || {};
  const progress = m.progress_updates || { skipped: {} };
  const skipped = progress.skipped || {};
  const skippedTotal = (skipped.run_failed || 0) + (skipped.run_finished || 0) + (skipped.stale || 0);
  const sig = JSON.stringify(m);
  if (dl.sig === sig) return;
  dl.sig = sig;
  dl.replaceChildren(
    stat('Cache hit rate', `${Math.round((cache.hit_rate || 0) * 100)}%`, {
      name: 'hit-rate',
      sub: `${plural(cache.hits || 0, 'hit')} · ${plural(cache.misses || 0, 'miss', 'misses')}`,
      title: `chapter-count cache: ${cache.entries || 0} entries, ${cache.evictions || 0} evicted, ${cache.expired || 0} expired`,
    }),
    stat('Progress updates', `${(progress.applied || 0).toLocaleString()} applied`, {
      name: 'progress',
      sub: `${skippedTotal.toLocaleString()} skipped`,
      title: `skipped: ${skipped.run_failed || 0} for failed runs, ${skipped.run_finished || 0} for finished runs, ${skipped.stale || 0} stale`,
    }),
    stat('SQL statements', (m.sql_statements || 0).toLocaleString(), {
      name: 'sql',
      sub: `${(m.http_requests || 0).toLocaleString()} HTTP requests`,
    }),
    stat('Orphans detected', (m.orphans_detected || 0).toLocaleString(), {
      name: 'orphans-detected',
      tone: m.orphans_detected ? 'warn' : null,
      sub: `${plural(m.sweeps || 0, 'sweep')} · ${(m.runs_recovered || 0).toLocaleString()} recovered`,
    }),
  );
}

/**
 * Keeps `container`'s children in step with `items` by key: existing
 * elements are updated in place (so a progress bar animates and focus
 * stays), new ones created, gone ones removed.
 */
function syncList(container, items, keyOf, create, update, empty) {
  const existing = new Map();
  for (const child of [...container.children]) {
    if (child.dataset.key) existing.set(child.dataset.key, child);
    else child.remove();
  }
  if (items.length === 0) {
    existing.forEach((el) => el.remove());
    if (empty) container.appendChild(empty());
    return;
  }
  let previous = null;
  const keep = new Set();
  for (const item of items) {
    const key = keyOf(item);
    keep.add(key);
    let el = existing.get(key);
    if (!el) {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    const next = previous ? previous.nextSibling : container.firstChild;
    if (next !== el) container.insertBefore(el, next);
    previous = el;
  }
  existing.forEach((el, key) => {
    if (!keep.has(key)) el.remove();
  });
}

function statusBadge(status) {
  return h('span', { class: `badge status-${status}`, dataset: { status } }, status);
}

function progressBar(extraClass) {
  const fill = h('div', { class: 'progress-fill' });
  const bar = h('div', { class: `progress${extraClass ? ` ${extraClass}` : ''}`, role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, fill);
  bar.fill = fill;
  return bar;
}

function setProgress(bar, run) {
  const pct = Math.max(0, Math.min(100, Number(run.progress) || 0));
  bar.fill.style.width = `${pct}%`;
  bar.setAttribute('aria-valuenow', String(pct));
  bar.setAttribute('aria-valuetext', `${pct}%, ${run.chapters_done} of ${run.chapters_total} chapters`);
  bar.dataset.status = run.status;
}

// ----------------------------------------------------------------- stories

function renderStories() {
  $('#stories-count').textContent = state.storiesLoaded ? String(state.stories.length) : '';
  const list = $('#story-list');
  if (!state.storiesLoaded) return;
  syncList(list, state.stories, (s) => s.id, createStoryCard, updateStoryCard, () =>
    h(
      'div',
      { class: 'empty' },
      h('p', { class: 'empty-title' }, 'No stories yet.'),
      h('p', {}, 'Create one with a title and a premise; an outline with one line per chapter gives you control over the shape.'),
    ),
  );
  if (state.flash) {
    const el = list.querySelector(`[data-story-id="${CSS.escape(state.flash)}"]`);
    if (el) {
      el.classList.add('flash');
      el.scrollIntoView({ block: 'nearest' });
    }
    state.flash = null;
  }
}

function createStoryCard(story) {
  const p = {};
  p.title = h('a', { class: 'story-title', href: `#story/${encodeURIComponent(story.id)}` });
  p.count = h('span', { class: 'chapter-count' });
  p.source = h('span', { class: 'count-source' });
  p.premise = h('p', { class: 'story-premise' });
  p.latest = h('div', { class: 'story-latest' });
  p.start = h('button', { type: 'button', class: 'btn small accent btn-start', onclick: () => startRun(p.story) });
  p.export = exportLink(story, 'btn small');
  p.epub = exportLink(story, 'btn small', 'epub');
  p.del = h('button', { type: 'button', class: 'btn small ghost danger-text btn-delete', text: 'Delete', onclick: () => deleteStory(p.story) });
  const card = h(
    'article',
    { class: 'card story', dataset: { storyId: story.id } },
    h('div', { class: 'story-head' }, p.title, h('span', { class: 'story-count' }, p.count, p.source)),
    p.premise,
    h('div', { class: 'story-foot' }, p.latest, h('div', { class: 'story-actions' }, p.start, p.export, p.epub, p.del)),
  );
  card.parts = p;
  return card;
}

function updateStoryCard(card, story) {
  const p = card.parts;
  p.story = story;
  const latest = latestRunOf(story.id);
  const sig = JSON.stringify([
    story,
    latest && [latest.id, latest.status, latest.progress, latest.chapters_done, latest.chapters_total, ago(latest.finished_at || latest.updated_at)],
    state.busy.has(`start:${story.id}`),
    state.busy.has(`delete:${story.id}`),
  ]);
  if (card.sig === sig) return; // drawn already: leave the DOM alone
  card.sig = sig;
  p.title.textContent = story.title;
  p.count.textContent = plural(story.chapter_count, 'chapter');
  p.source.textContent = SOURCE_LABEL[story.chapter_count_source] || story.chapter_count_source;
  p.source.dataset.source = story.chapter_count_source;
  p.premise.textContent = story.premise || '';
  p.premise.hidden = !story.premise;
  const run = latest;
  if (!run) {
    p.latest.replaceChildren(h('span', { class: 'muted' }, 'Not written yet'));
  } else {
    const href = `#run/${encodeURIComponent(run.id)}`;
    p.latest.replaceChildren(
      statusBadge(run.status),
      isActive(run)
        ? h('a', { class: 'muted', href }, `${run.progress}% · ${run.chapters_done}/${run.chapters_total} chapters`)
        : h('a', { class: 'muted', href }, timeAgo(run.finished_at || run.updated_at)),
    );
  }
  const active = Boolean(run && isActive(run));
  const busy = state.busy.has(`start:${story.id}`);
  p.start.textContent = busy ? 'Starting…' : active ? 'Writing…' : 'Start run';
  p.start.disabled = busy || active;
  p.start.title = active ? 'a run of this story is in progress' : '';
  p.del.disabled = state.busy.has(`delete:${story.id}`);
}

const EXPORTS = {
  md: { query: '', cls: 'btn-export', text: 'Export .md', title: 'Download the story as Markdown' },
  epub: { query: '?format=epub', cls: 'btn-export-epub', text: 'EPUB', title: 'Download the story as an EPUB book' },
};

function exportLink(story, cls, format = 'md') {
  const kind = EXPORTS[format];
  const href = `/api/stories/${encodeURIComponent(story.id)}/export${kind.query}`;
  return h('a', {
    class: `${cls} ${kind.cls}`,
    href,
    download: '',
    title: kind.title,
    text: kind.text,
    onclick: (ev) => {
      // A download link cannot send the Authorization header: with a
      // token, fetch the file and hand the browser a blob instead.
      if (!token()) return;
      ev.preventDefault();
      downloadWithToken(href, story.title, format);
    },
  });
}

async function downloadWithToken(href, title, format = 'md') {
  try {
    const resp = await fetch(href, { headers: { Authorization: `Bearer ${token()}` }, cache: 'no-store' });
    if (!resp.ok) {
      const data = await resp.json().catch(() => ({}));
      throw new ApiError(data.error || { message: `the server answered ${resp.status}` }, resp.status);
    }
    const url = URL.createObjectURL(await resp.blob());
    const a = h('a', { href: url, download: `${title.replace(/[^\w.-]+/g, '-').slice(0, 80) || 'story'}.${format}` });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    showError(err, 'Could not export the story');
  }
}

// -------------------------------------------------------------------- runs

function filteredRuns() {
  const runs = state.runs.filter((r) => {
    if (state.filter === 'active') return isActive(r);
    if (state.filter === 'problems') return r.status === 'failed';
    return true;
  });
  // Active runs first; otherwise the API's order (newest first).
  return runs.filter(isActive).concat(runs.filter((r) => !isActive(r)));
}

function renderRuns() {
  const list = $('#run-list');
  const active = state.runs.filter(isActive).length;
  $('#runs-count').textContent = state.runsLoaded ? (active ? `${active} active` : String(state.runs.length)) : '';
  if (!state.runsLoaded) return;
  const runs = filteredRuns();
  syncList(list, runs, (r) => r.id, createRunCard, updateRunCard, () =>
    h(
      'div',
      { class: 'empty' },
      h('p', { class: 'empty-title' }, state.filter === 'all' ? 'No runs yet.' : state.filter === 'active' ? 'Nothing is being written right now.' : 'No failed runs.'),
      state.filter === 'all' ? h('p', {}, 'Start one from a story: storyflow writes it chapter by chapter and shows its progress here.') : null,
    ),
  );
}

function storyLabel(storyId) {
  const story = storyById(storyId);
  if (story) return { text: story.title, missing: false };
  const orphan = state.orphans && (state.orphans.runs || []).some((r) => r.story_id === storyId);
  return { text: orphan ? `missing story ${shortId(storyId)}` : `story ${shortId(storyId)}`, missing: orphan };
}

function createRunCard(run, compact) {
  const p = {};
  p.title = h('a', { class: 'run-title', href: `#run/${encodeURIComponent(run.id)}` });
  p.badge = h('span', { class: 'badge' });
  p.bar = progressBar();
  p.pct = h('span', { class: 'run-pct' });
  p.step = h('span', { class: 'run-step' });
  p.scope = h('span', { class: 'run-scope' });
  p.when = h('span', { class: 'run-when' });
  p.error = h('div', { class: 'run-error' });
  p.cancel = h('button', { type: 'button', class: 'btn small ghost btn-cancel', text: 'Cancel', onclick: () => cancelRun(p.run) });
  p.retry = h('button', { type: 'button', class: 'btn small btn-retry', text: 'Retry', onclick: () => retryRun(p.run) });
  p.details = h('a', { class: 'btn small ghost btn-details', href: `#run/${encodeURIComponent(run.id)}`, text: 'Timeline' });
  const card = h(
    'article',
    { class: `card run${compact === true ? ' compact' : ''}`, dataset: { runId: run.id } },
    h('div', { class: 'run-head' }, p.title, p.badge),
    p.bar,
    h('div', { class: 'run-foot' }, h('div', { class: 'run-meta' }, p.pct, p.step, p.scope, p.when), h('div', { class: 'run-actions' }, p.cancel, p.retry, p.details)),
    p.error,
  );
  card.parts = p;
  return card;
}

function updateRunCard(card, run) {
  const p = card.parts;
  p.run = run;
  const label = storyLabel(run.story_id);
  const sig = JSON.stringify([run, label, runWhen(run).textContent, state.busy.has(`cancel:${run.id}`), state.busy.has(`retry:${run.id}`)]);
  if (card.sig === sig) return;
  card.sig = sig;
  card.dataset.status = run.status;
  p.title.textContent = card.classList.contains('compact') ? `Run ${shortId(run.id)}` : label.text;
  p.title.classList.toggle('missing', label.missing && !card.classList.contains('compact'));
  p.badge.className = `badge status-${run.status}`;
  p.badge.dataset.status = run.status;
  p.badge.textContent = run.status;
  setProgress(p.bar, run);
  p.pct.textContent = `${run.progress}%`;
  p.step.textContent = runStepText(run);
  p.scope.textContent = runScope(run);
  p.scope.hidden = !p.scope.textContent;
  p.when.replaceChildren(runWhen(run));
  if (run.error) {
    p.error.hidden = false;
    p.error.replaceChildren(h('code', { class: 'error-code' }, run.error.code), ' ', h('span', { class: 'error-message' }, run.error.message));
  } else {
    p.error.hidden = true;
    p.error.replaceChildren();
  }
  p.cancel.hidden = !isActive(run);
  p.retry.hidden = !canRetry(run);
  p.cancel.disabled = state.busy.has(`cancel:${run.id}`);
  p.retry.disabled = state.busy.has(`retry:${run.id}`);
}

/** What a run writes, when it is not the whole story. */
function runScope(run) {
  if (run.regenerate_chapter) return `rewrite of chapter ${run.regenerate_chapter}`;
  if (run.until_chapter) return `up to chapter ${run.until_chapter}`;
  return '';
}

function runStepText(run) {
  const chapters = `${run.chapters_done} of ${plural(run.chapters_total, 'chapter')}`;
  if (run.status === 'pending') return run.attempt > 0 ? `${chapters} · waiting to resume` : `${chapters} · waiting for a worker`;
  if (run.status === 'running') return `${run.step || 'starting'} · ${chapters}`;
  return run.attempt > 1 ? `${chapters} · ${run.attempt} attempts` : chapters;
}

function runWhen(run) {
  if (run.finished_at) return timeAgo(run.finished_at, run.status === 'completed' ? 'finished' : run.status);
  if (run.started_at) return timeAgo(run.started_at, 'started');
  return timeAgo(run.created_at, 'queued');
}

// ----------------------------------------------------------------- actions

async function withBusy(key, fn) {
  if (state.busy.has(key)) return;
  state.busy.add(key);
  render();
  try {
    await fn();
  } finally {
    state.busy.delete(key);
    render();
  }
}

/**
 * Starts a run of `story`; with `untilInput` (the story view's "stop after
 * chapter" field) filled, the run stops after that chapter. Empty: no body,
 * every missing chapter.
 */
function startRun(story, untilInput) {
  return withBusy(`start:${story.id}`, async () => {
    const until = untilInput ? untilInput.value.trim() : '';
    const body = until === '' ? undefined : { until_chapter: Number(until) };
    if (untilInput) untilInput.removeAttribute('aria-invalid');
    try {
      const run = await api('POST', `/api/stories/${encodeURIComponent(story.id)}/runs`, body);
      addRun(run);
      toast(run.until_chapter ? `Started writing “${story.title}” up to chapter ${run.until_chapter}.` : `Started writing “${story.title}”.`);
      if (untilInput) untilInput.value = '';
    } catch (err) {
      showError(err, `Could not start a run of “${story.title}”`);
      if (untilInput && err.details && err.details.field === 'until_chapter') untilInput.setAttribute('aria-invalid', 'true');
    }
    refreshNow();
  });
}

/** A run this page just started: shown at once, before the next poll. */
function addRun(run) {
  state.runs = [run, ...state.runs.filter((r) => r.id !== run.id)];
  if (state.story && state.story.id === run.story_id && state.story.runs) {
    state.story.runs = [run, ...state.story.runs.filter((r) => r.id !== run.id)];
  }
  state.healthAt = 0;
}

function cancelRun(run) {
  return withBusy(`cancel:${run.id}`, async () => {
    try {
      await api('POST', `/api/runs/${encodeURIComponent(run.id)}/cancel`);
      toast('Run cancelled. Retry it to resume where it stopped.');
    } catch (err) {
      showError(err, 'Could not cancel the run');
    }
    await refreshNow();
  });
}

function retryRun(run) {
  return withBusy(`retry:${run.id}`, async () => {
    try {
      await api('POST', `/api/runs/${encodeURIComponent(run.id)}/retry`);
      toast(`Run resumes from chapter ${run.chapters_done + 1}.`);
    } catch (err) {
      showError(err, 'Could not retry the run');
    }
    await refreshNow();
  });
}

async function deleteStory(story) {
  const run = latestRunOf(story.id);
  const ok = await confirmDialog({
    title: `Delete “${story.title}”?`,
    body: [
      'The story, its chapters and all of its runs are removed from the database.',
      run && isActive(run) ? 'Its run in progress is cancelled.' : null,
      'This cannot be undone. Export it first to keep the text.',
    ],
    confirmLabel: 'Delete story',
  });
  if (!ok) return;
  await withBusy(`delete:${story.id}`, async () => {
    try {
      await api('DELETE', `/api/stories/${encodeURIComponent(story.id)}`);
      state.stories = state.stories.filter((s) => s.id !== story.id);
      state.runs = state.runs.filter((r) => r.story_id !== story.id);
      toast(`Deleted “${story.title}”.`);
      if (state.view.name !== 'dashboard') location.hash = '';
    } catch (err) {
      showError(err, `Could not delete “${story.title}”`);
    }
  });
  state.healthAt = 0;
  refreshNow();
}

// --------------------------------------------------------- new story form

const form = () => $('#story-form');

function openStoryForm(open) {
  form().hidden = !open;
  $('#btn-new-story').setAttribute('aria-expanded', String(open));
  $('#btn-new-story').hidden = open;
  if (open) $('#story-title').focus();
}

async function submitStory(ev) {
  ev.preventDefault();
  const errorBox = $('#story-form-error');
  errorBox.replaceChildren();
  for (const el of form().querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const body = {
    title: $('#story-title').value,
    premise: $('#story-premise').value,
    outline: $('#story-outline').value,
  };
  const count = $('#story-chapter-count').value.trim();
  if (count !== '') body.chapter_count = Number(count);
  const submit = $('#story-submit');
  submit.disabled = true;
  submit.textContent = 'Creating…';
  try {
    const story = await api('POST', '/api/stories', body);
    form().reset();
    openStoryForm(false);
    state.stories = [story, ...state.stories.filter((s) => s.id !== story.id)];
    state.flash = story.id;
    toast(`Created “${story.title}”: ${plural(story.chapter_count, 'chapter')}, ${SOURCE_LABEL[story.chapter_count_source] || story.chapter_count_source}.`);
    if (story.warnings && story.warnings.length) {
      notify('warn', [h('p', { class: 'error-context' }, `About the outline of “${story.title}”`), ...story.warnings.map((w) => h('p', {}, w))], { key: `warn:${story.id}` });
    }
    render();
  } catch (err) {
    errorBox.replaceChildren(errorView(err, 'Could not create the story'));
    const field = err.details && err.details.field;
    const input = field ? form().querySelector(`[name="${CSS.escape(field)}"]`) : null;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  } finally {
    submit.disabled = false;
    submit.textContent = 'Create story';
  }
}

// ------------------------------------------------------------- maintenance

async function runHealthCheck() {
  const button = $('#btn-health-check');
  button.disabled = true;
  showMaintenance(h('p', { class: 'muted' }, 'Checking the database…'), 'Health check');
  try {
    const report = await api('GET', '/api/maintenance/health');
    showMaintenance(healthReportView(report), 'Health check', 'health');
    state.healthAt = 0; // the summary catches up with what the check found
    refreshNow();
  } catch (err) {
    showMaintenance(errorView(err, 'The health check failed'), 'Health check', 'health');
  } finally {
    button.disabled = false;
  }
}

function healthReportView(report) {
  const problems = report.problems || [];
  const head = report.healthy
    ? h('p', { class: 'verdict good' }, 'Healthy: no problems found.')
    : h('p', { class: 'verdict bad' }, `${plural(problems.length, 'problem')} found.`);
  const facts = h(
    'p',
    { class: 'muted' },
    `Integrity ${report.integrity_ok ? 'ok' : 'FAILED'} · schema version ${report.schema_version}`,
  );
  const list = problems.length
    ? h(
        'ul',
        { class: 'problems' },
        problems.map((p) =>
          h(
            'li',
            { dataset: { code: p.code } },
            h('code', { class: 'error-code' }, p.code),
            ' ',
            h('span', {}, p.message),
            h('span', { class: 'muted' }, p.fixable ? ' · fixable' : ' · needs you'),
          ),
        ),
      )
    : null;
  const fixable = problems.some((p) => p.fixable);
  const next = fixable
    ? h('p', { class: 'help' }, 'To repair what is safe to repair, run ', h('code', {}, 'storyflow health-check --fix'), ' (or POST /api/maintenance/health?fix=true).')
    : null;
  return [head, facts, list, next];
}

async function runOrphanDryRun() {
  const button = $('#btn-orphan-dry-run');
  button.disabled = true;
  showMaintenance(h('p', { class: 'muted' }, 'Looking for orphans…'), 'Orphan dry-run');
  try {
    const report = await api('POST', '/api/maintenance/fix-orphans?dry_run=true');
    showMaintenance(orphanReportView(report), 'Orphan dry-run', 'orphans');
  } catch (err) {
    showMaintenance(errorView(err, 'The orphan dry-run failed'), 'Orphan dry-run', 'orphans');
  } finally {
    button.disabled = false;
  }
}

function orphanReportView(report) {
  const c = report.counts || {};
  const none = (c.runs || 0) + (c.chapters || 0) + (c.events || 0) === 0;
  const runs = report.orphaned_runs || [];
  return [
    h('p', { class: `verdict ${none ? 'good' : 'bad'}` }, none ? 'No orphans: every run, chapter and event belongs to a story.' : 'Orphans found.'),
    h('p', { class: 'summary' }, report.summary),
    h(
      'dl',
      { class: 'stats compact' },
      stat('Runs', (c.runs || 0).toLocaleString(), { tone: c.runs ? 'bad' : null }),
      stat('Active', (c.active_runs || 0).toLocaleString()),
      stat('Chapters', (c.chapters || 0).toLocaleString()),
      stat('Events', (c.events || 0).toLocaleString()),
    ),
    runs.length
      ? h(
          'ul',
          { class: 'problems' },
          runs.map((r) =>
            h(
              'li',
              {},
              h('a', { href: `#run/${encodeURIComponent(r.id)}`, class: 'mono' }, shortId(r.id)),
              ` ${r.status} · points at missing story `,
              h('code', {}, shortId(r.story_id)),
              r.error_code ? [' · ', h('code', { class: 'error-code' }, r.error_code)] : null,
              ' · created ',
              timeAgo(r.created_at),
            ),
          ),
        )
      : null,
    none ? null : h('p', { class: 'help' }, 'Nothing was changed. To remove them, run ', h('code', {}, 'storyflow fix-orphans'), '.'),
  ];
}

function showMaintenance(content, title, kind) {
  const box = $('#maintenance-result');
  box.dataset.kind = kind || 'working';
  box.replaceChildren(
    h(
      'div',
      { class: 'card-head' },
      h('h2', {}, title),
      h('span', { class: 'card-note' }, kind ? `at ${new Date().toLocaleTimeString()}` : ''),
      h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Close', text: '×', onclick: () => (box.hidden = true) }),
    ),
    h('div', { class: 'maintenance-body' }, content),
  );
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

// -------------------------------------------------------------- story view

async function refreshStoryView() {
  const view = state.story;
  if (!view) return;
  const id = encodeURIComponent(view.id);
  try {
    const [story, runs] = await Promise.all([api('GET', `/api/stories/${id}`), api('GET', `/api/stories/${id}/runs?limit=20`)]);
    view.story = story;
    view.runs = runs.runs || [];
    view.error = null;
    // Chapters are fetched again only when a run has saved more.
    const sig = view.runs.map((r) => `${r.id}:${r.chapters_done}:${r.status}`).join(',');
    if (sig !== view.chaptersSig || !view.chapters) {
      const chapters = await api('GET', `/api/stories/${id}/chapters`);
      view.chapters = chapters.chapters || [];
      view.chaptersSig = sig;
    }
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      view.error = err;
      return;
    }
    throw err;
  }
}

function renderStoryView() {
  const root = $('#view-story');
  const view = state.story;
  if (!view) return;
  if (view.error) {
    root.replaceChildren(backLink(), h('div', { class: 'card' }, errorView(view.error, 'This story cannot be shown')));
    root.dataset.built = '';
    return;
  }
  if (!view.story) {
    root.replaceChildren(backLink(), h('p', { class: 'muted' }, 'Loading…'));
    return;
  }
  const story = view.story;
  if (root.dataset.built !== story.id) {
    root.dataset.built = story.id;
    const p = {};
    p.title = h('h1', { class: 'detail-title' });
    p.meta = h('p', { class: 'detail-meta' });
    p.until = h('input', {
      id: 'until-chapter',
      class: 'until-input',
      name: 'until_chapter',
      type: 'number',
      min: '1',
      step: '1',
      inputmode: 'numeric',
      placeholder: 'all',
      'aria-describedby': 'until-help',
    });
    p.start = h('button', { type: 'button', class: 'btn primary btn-start', onclick: () => startRun(p.story, p.until) });
    p.del = h('button', { type: 'button', class: 'btn ghost danger-text btn-delete', text: 'Delete', onclick: () => deleteStory(p.story) });
    p.premise = h('section', { class: 'prose-block' });
    p.outline = h('details', { class: 'outline' });
    p.runs = h('div', { class: 'list' });
    p.moreRuns = h('p', { class: 'muted more-runs' });
    p.toc = h('ol', { class: 'toc' });
    p.chaptersHead = h('h2', {});
    p.chapters = h('div', { class: 'reader' });
    root.replaceChildren(
      backLink(),
      h(
        'header',
        { class: 'detail-head' },
        h('div', {}, p.title, p.meta),
        h(
          'div',
          { class: 'detail-actions' },
          h(
            'div',
            { class: 'start-group' },
            p.start,
            h('label', { class: 'until-field', for: 'until-chapter' }, h('span', { id: 'until-help' }, 'stop after chapter'), p.until),
          ),
          exportLink(story, 'btn'),
          exportLink(story, 'btn', 'epub'),
          p.del,
        ),
      ),
      h(
        'div',
        { class: 'story-layout' },
        h(
          'aside',
          { class: 'story-side' },
          p.premise,
          p.outline,
          h('section', { class: 'side-block' }, h('h2', {}, 'Runs'), p.runs, p.moreRuns),
          h('section', { class: 'side-block toc-block' }, h('h2', {}, 'Contents'), p.toc),
        ),
        h('section', { class: 'story-main', 'aria-label': 'Chapters' }, p.chaptersHead, p.chapters),
      ),
    );
    root.parts = p;
  }
  const p = root.parts;
  p.story = story;
  p.title.textContent = story.title;
  const chapters = view.chapters || [];
  const words = chapters.reduce((n, c) => n + (c.word_count || 0), 0);
  p.meta.replaceChildren(
    h('span', { class: 'chapter-count' }, plural(story.chapter_count, 'chapter')),
    ' ',
    h('span', { class: 'count-source', dataset: { source: story.chapter_count_source } }, SOURCE_LABEL[story.chapter_count_source] || story.chapter_count_source),
    h('span', { class: 'sep' }, ' · '),
    `${plural(words, 'word')} written`,
    h('span', { class: 'sep' }, ' · '),
    timeAgo(story.created_at, 'created'),
  );
  const active = (view.runs || []).find(isActive);
  const busy = state.busy.has(`start:${story.id}`);
  p.start.textContent = busy ? 'Starting…' : active ? 'Writing…' : 'Start run';
  p.start.disabled = busy || Boolean(active);
  p.until.max = String(story.chapter_count);
  p.until.disabled = p.start.disabled;
  // Once every chapter is written, writing is no longer the next step.
  p.start.classList.toggle('primary', chapters.length < story.chapter_count);
  p.premise.replaceChildren(h('h2', {}, 'Premise'), story.premise ? h('p', { class: 'pre' }, story.premise) : h('p', { class: 'muted' }, 'No premise.'));
  const outlineSig = story.outline;
  if (p.outline.sig !== outlineSig) {
    p.outline.sig = outlineSig;
    p.outline.replaceChildren(
      h('summary', {}, 'Outline'),
      story.outline ? h('pre', { class: 'outline-text' }, story.outline) : h('p', { class: 'muted' }, 'No outline: the first run writes one from the premise.'),
    );
  }
  const runs = view.runs || [];
  syncList(p.runs, runs.slice(0, 3), (r) => r.id, (r) => createRunCard(r, true), updateRunCard, () => h('p', { class: 'muted' }, 'No runs yet.'));
  p.moreRuns.textContent = runs.length > 3 ? `and ${plural(runs.length - 3, 'earlier run')}` : '';
  p.chaptersHead.textContent = chapters.length ? `${plural(chapters.length, 'chapter')} of ${story.chapter_count}` : 'Chapters';
  syncList(
    p.toc,
    chapters,
    (c) => String(c.number),
    (c) =>
      h(
        'li',
        {},
        h('button', {
          type: 'button',
          class: 'toc-link',
          onclick: () => {
            const el = document.getElementById(`chapter-${c.number}`);
            if (el) el.scrollIntoView({ behavior: 'smooth', block: 'start' });
          },
        }),
      ),
    (li, c) => {
      li.firstChild.textContent = `${c.number}. ${c.title}`;
    },
    () => h('li', { class: 'muted' }, 'Nothing written yet.'),
  );
  const rewriting = new Set(runs.filter((r) => isActive(r) && r.regenerate_chapter).map((r) => r.regenerate_chapter));
  syncList(p.chapters, chapters, (c) => String(c.number), chapterView, (el, c) => {
    // A chapter being edited keeps its form, whatever the polls bring.
    if (el.editing) return;
    const sig = JSON.stringify([c.title, c.word_count, c.created_at, c.updated_at, String(c.content || '').length, rewriting.has(c.number)]);
    if (el.sig !== sig) {
      el.sig = sig;
      el.replaceChildren(...chapterContent(c, story, el, rewriting.has(c.number)).flat());
    }
  }, () =>
    h(
      'div',
      { class: 'empty' },
      h('p', { class: 'empty-title' }, 'Nothing written yet.'),
      h('p', {}, active ? 'Chapters appear here as they are saved.' : 'Start a run to write this story.'),
    ),
  );
}

function chapterView(chapter) {
  return h('article', { class: 'chapter', id: `chapter-${chapter.number}`, dataset: { number: String(chapter.number) } });
}

function chapterContent(c, story, el, rewriting) {
  const paragraphs = String(c.content || '')
    .split(/\n\s*\n/)
    .map((t) => t.trim())
    .filter(Boolean);
  const rewrite = h('button', {
    type: 'button',
    class: 'btn small ghost btn-rewrite-chapter',
    text: rewriting ? 'Rewriting…' : 'Rewrite',
    title: 'Write this chapter again; the others stay as they are',
    onclick: () => rewriteChapter(story, c, rewrite),
  });
  rewrite.disabled = Boolean(rewriting);
  const meta = [plural(c.word_count, 'word')];
  if (c.updated_at) meta.push(`changed ${ago(c.updated_at)}`);
  if (rewriting) meta.push('being rewritten');
  return [
    h(
      'header',
      { class: 'chapter-head' },
      h(
        'div',
        { class: 'chapter-bar' },
        h('p', { class: 'chapter-number' }, `Chapter ${c.number}`),
        h(
          'div',
          { class: 'chapter-actions' },
          h('button', {
            type: 'button',
            class: 'btn small ghost btn-edit-chapter',
            text: 'Edit',
            disabled: Boolean(rewriting),
            title: rewriting ? 'wait for the rewrite to finish' : null,
            onclick: () => editChapter(el, c, story),
          }),
          rewrite,
        ),
      ),
      h('h3', { class: 'chapter-title' }, c.title),
      h('p', { class: 'chapter-meta' }, meta.join(' · ')),
    ),
    paragraphs.map((t) => h('p', {}, t)),
  ];
}

/** Turns a chapter of the reader into a form: its title and its text. */
function editChapter(el, c, story) {
  el.editing = true;
  const n = c.number;
  const title = h('input', { class: 'chapter-title-input', name: 'title', type: 'text', maxlength: '500', autocomplete: 'off', id: `chapter-${n}-title` });
  title.value = c.title;
  const content = h('textarea', { class: 'chapter-content-input', name: 'content', rows: '16', id: `chapter-${n}-content` });
  content.value = c.content;
  const error = h('div', { class: 'form-error chapter-edit-error' });
  const save = h('button', { type: 'submit', class: 'btn small primary btn-save-chapter', text: 'Save' });
  const cancel = h('button', {
    type: 'button',
    class: 'btn small ghost btn-cancel-edit',
    text: 'Cancel',
    onclick: () => closeChapterEditor(el),
  });
  const form = h(
    'form',
    {
      class: 'chapter-edit',
      novalidate: true,
      'aria-label': `Edit chapter ${n}`,
      onsubmit: (ev) => {
        ev.preventDefault();
        saveChapter({ el, c, story, title, content, error, save });
      },
    },
    h('p', { class: 'chapter-number' }, `Chapter ${n}`),
    h('label', { class: 'field' }, h('span', { class: 'label' }, 'Title'), title),
    h('label', { class: 'field' }, h('span', { class: 'label' }, 'Text'), content),
    h('p', { class: 'help' }, 'A blank line starts a new paragraph. Saving replaces the chapter’s text; its summary is written again on the next run.'),
    error,
    h('div', { class: 'form-actions' }, save, cancel),
  );
  el.replaceChildren(form);
  title.focus();
}

function closeChapterEditor(el) {
  el.editing = false;
  el.sig = null; // drawn again from the chapter as it is now
  render();
}

async function saveChapter({ el, c, story, title, content, error, save }) {
  error.replaceChildren();
  for (const field of [title, content]) field.removeAttribute('aria-invalid');
  save.disabled = true;
  save.textContent = 'Saving…';
  try {
    const chapter = await api('PATCH', `/api/stories/${encodeURIComponent(story.id)}/chapters/${c.number}`, {
      title: title.value,
      content: content.value,
    });
    const view = state.story;
    if (view && view.id === story.id && view.chapters) {
      view.chapters = view.chapters.map((x) => (x.number === chapter.number ? chapter : x));
    }
    closeChapterEditor(el);
    toast(`Saved chapter ${chapter.number}: “${chapter.title}”.`);
  } catch (err) {
    error.replaceChildren(errorView(err, `Could not save chapter ${c.number}`));
    const name = err.details && err.details.field;
    const field = name === 'title' ? title : name === 'content' ? content : null;
    if (field) {
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }
  } finally {
    save.disabled = false;
    save.textContent = 'Save';
  }
}

/** Starts a run that writes one chapter again, after asking. */
async function rewriteChapter(story, c, button) {
  const ok = await confirmDialog({
    title: `Rewrite chapter ${c.number}, “${c.title}”?`,
    body: [
      'A run writes this chapter again and replaces its text, edits included.',
      'The other chapters stay exactly as they are.',
      'Export the story first to keep this version.',
    ],
    confirmLabel: 'Rewrite chapter',
  });
  if (!ok) return;
  button.disabled = true;
  button.textContent = 'Starting…';
  try {
    const run = await api('POST', `/api/stories/${encodeURIComponent(story.id)}/chapters/${c.number}/regenerate`);
    addRun(run);
    toast(`Rewriting chapter ${c.number} of “${story.title}”.`);
  } catch (err) {
    showError(err, `Could not rewrite chapter ${c.number}`);
    button.disabled = false;
    button.textContent = 'Rewrite';
  }
  refreshNow();
}

function backLink() {
  return h('nav', { class: 'crumbs' }, h('a', { href: '#', class: 'back' }, '← All stories and runs'));
}

// ---------------------------------------------------------------- run view

async function refreshRunView() {
  const view = state.run;
  if (!view) return;
  if (view.run && !isActive(view.run) && view.events && !view.stale) return;
  const id = encodeURIComponent(view.id);
  try {
    const [run, events] = await Promise.all([api('GET', `/api/runs/${id}`), api('GET', `/api/runs/${id}/events`)]);
    view.run = run;
    view.events = events.events || [];
    view.error = null;
    view.stale = false;
    if (!view.story || view.story.id !== run.story_id) {
      view.story = storyById(run.story_id);
      if (!view.story) {
        try {
          view.story = await api('GET', `/api/stories/${encodeURIComponent(run.story_id)}`);
        } catch (err) {
          if (err.status !== 404) throw err;
          view.story = { id: run.story_id, missing: true };
        }
      }
    }
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      view.error = err;
      return;
    }
    throw err;
  }
}

function renderRunView() {
  const root = $('#view-run');
  const view = state.run;
  if (!view) return;
  if (view.error) {
    root.replaceChildren(backLink(), h('div', { class: 'card' }, errorView(view.error, 'This run cannot be shown')));
    root.dataset.built = '';
    return;
  }
  if (!view.run) {
    root.replaceChildren(backLink(), h('p', { class: 'muted' }, 'Loading…'));
    return;
  }
  const run = view.run;
  if (root.dataset.built !== run.id) {
    root.dataset.built = run.id;
    const p = {};
    p.title = h('h1', { class: 'detail-title' });
    p.badge = h('span', { class: 'badge' });
    p.story = h('p', { class: 'detail-meta' });
    p.bar = progressBar('large');
    p.pct = h('span', { class: 'big-pct' });
    p.chapters = h('span', { class: 'muted' });
    p.facts = h('dl', { class: 'facts' });
    p.error = h('div', { class: 'run-error large' });
    p.cancel = h('button', { type: 'button', class: 'btn btn-cancel', text: 'Cancel run', onclick: () => cancelRun(view.run).then(markRunStale) });
    p.retry = h('button', { type: 'button', class: 'btn primary btn-retry', text: 'Retry', onclick: () => retryRun(view.run).then(markRunStale) });
    p.diagnose = h('button', { type: 'button', class: 'btn btn-diagnose', text: 'Diagnose', onclick: diagnoseRun });
    p.diagnosis = h('div', { class: 'diagnosis' });
    p.timeline = h('ol', { class: 'timeline' });
    root.replaceChildren(
      backLink(),
      h(
        'header',
        { class: 'detail-head' },
        h('div', {}, h('div', { class: 'title-row' }, p.title, p.badge), p.story),
        h('div', { class: 'detail-actions' }, p.cancel, p.retry, p.diagnose),
      ),
      h(
        'div',
        { class: 'run-layout' },
        h(
          'section',
          { class: 'card run-summary', dataset: { runId: run.id } },
          h('div', { class: 'progress-row' }, p.pct, p.chapters),
          p.bar,
          p.error,
          p.facts,
          p.diagnosis,
        ),
        h('section', { class: 'card timeline-card', 'aria-label': 'Timeline' }, h('div', { class: 'card-head' }, h('h2', {}, 'Timeline'), h('span', { class: 'card-note' }, 'newest first')), p.timeline),
      ),
    );
    root.parts = p;
  }
  const p = root.parts;
  const story = view.story;
  p.title.textContent = story && story.title ? story.title : `Run ${shortId(run.id)}`;
  p.badge.className = `badge status-${run.status}`;
  p.badge.dataset.status = run.status;
  p.badge.textContent = run.status;
  p.story.replaceChildren(
    story && !story.missing
      ? h('a', { href: `#story/${encodeURIComponent(story.id)}` }, 'Read the story')
      : h('span', { class: 'missing' }, `its story ${shortId(run.story_id)} does not exist: an orphaned run`),
    h('span', { class: 'sep' }, ' · '),
    h('span', { class: 'mono', title: 'run id' }, run.id),
  );
  setProgress(p.bar, run);
  p.pct.textContent = `${run.progress}%`;
  p.chapters.textContent = `${run.chapters_done} of ${plural(run.chapters_total, 'chapter')}`;
  if (run.error) {
    p.error.hidden = false;
    p.error.replaceChildren(h('code', { class: 'error-code' }, run.error.code), ' ', h('span', { class: 'error-message' }, run.error.message));
  } else {
    p.error.hidden = true;
  }
  p.facts.replaceChildren(
    fact('Step', run.step || '—'),
    fact('Writes', runScope(run) || 'every missing chapter'),
    fact('Attempt', String(run.attempt)),
    fact('Queued', timeAgo(run.created_at)),
    fact('Started', run.started_at ? timeAgo(run.started_at) : '—'),
    fact('Last update', timeAgo(run.updated_at)),
    fact('Finished', run.finished_at ? timeAgo(run.finished_at) : '—'),
  );
  p.cancel.hidden = !isActive(run);
  p.retry.hidden = !canRetry(run);
  p.cancel.disabled = state.busy.has(`cancel:${run.id}`);
  p.retry.disabled = state.busy.has(`retry:${run.id}`);
  syncList(
    p.timeline,
    (view.events || []).slice().reverse(), // newest first: what is happening now
    (e) => String(e.id),
    (e) =>
      h(
        'li',
        { class: `event kind-${String(e.kind).replace(/[^a-z_-]/gi, '')}`, dataset: { kind: e.kind } },
        h('time', { class: 'event-time', datetime: e.at, title: fullTime(e.at) }, clockTime(e.at)),
        h('span', { class: 'event-kind' }, e.kind),
        h('span', { class: 'event-message' }, e.message),
      ),
    () => {},
    () => h('li', { class: 'muted' }, 'No events yet.'),
  );
}

function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value));
}

function markRunStale() {
  if (state.run) state.run.stale = true;
  refreshNow();
}

async function diagnoseRun() {
  const view = state.run;
  if (!view || !view.run) return;
  const box = $('#view-run').parts.diagnosis;
  box.replaceChildren(h('p', { class: 'muted' }, 'Diagnosing…'));
  try {
    const report = await api('GET', `/api/diagnostics/runs/${encodeURIComponent(view.id)}`);
    box.replaceChildren(
      h('h3', {}, 'Diagnosis'),
      h(
        'ul',
        { class: 'problems' },
        (report.findings || []).map((f) => h('li', { dataset: { severity: f.severity } }, h('code', { class: `severity severity-${f.severity}` }, f.code), ' ', f.message)),
      ),
      (report.recommendations || []).length
        ? [h('p', { class: 'help' }, 'What to do:'), h('ul', { class: 'recommendations' }, report.recommendations.map((r) => h('li', {}, h('code', {}, r))))]
        : null,
    );
  } catch (err) {
    box.replaceChildren(errorView(err, 'Could not diagnose the run'));
  }
}

// ------------------------------------------------------------------ router

function route() {
  const match = location.hash.match(/^#(story|run)\/([^/?#]{1,100})$/);
  const view = match ? { name: match[1], id: decodeURIComponent(match[2]) } : { name: 'dashboard' };
  state.view = view;
  state.story = view.name === 'story' ? { id: view.id } : null;
  state.run = view.name === 'run' ? { id: view.id } : null;
  for (const name of ['dashboard', 'story', 'run']) $(`#view-${name}`).hidden = name !== view.name;
  $('#view-story').dataset.built = '';
  $('#view-run').dataset.built = '';
  if (view.name !== 'dashboard') window.scrollTo(0, 0);
  render();
  refreshNow();
}

// -------------------------------------------------------------------- init

function init() {
  $('#btn-new-story').addEventListener('click', () => openStoryForm(true));
  $('#story-cancel').addEventListener('click', () => {
    $('#story-form-error').replaceChildren();
    openStoryForm(false);
  });
  form().addEventListener('submit', submitStory);
  $('#btn-health-check').addEventListener('click', runHealthCheck);
  $('#btn-orphan-dry-run').addEventListener('click', runOrphanDryRun);
  for (const button of document.querySelectorAll('.segmented .seg')) {
    button.addEventListener('click', () => {
      state.filter = button.dataset.filter;
      for (const b of document.querySelectorAll('.segmented .seg')) b.setAttribute('aria-pressed', String(b === button));
      renderRuns();
    });
  }
  window.addEventListener('hashchange', route);
  route();
}

init();
