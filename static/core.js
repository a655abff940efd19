// storyflow's page: helpers, the API client, messages and
// dialogs. Plain JavaScript, no build step, no dependencies.
//
// The page is classic scripts loaded in the order of index.html (core.js
// first, app.js last); they share one global scope, and app.js, loaded
// last, holds the state and starts everything.
//
// Invariants:
// - User and server text only ever reaches the page as text: through h()
//   (createTextNode / textContent) or an attribute value. Nothing here
//   assigns innerHTML, outerHTML or insertAdjacentHTML.
// - Every API error is shown in words: the contract's error.message and
//   error.hint, never swallowed.
// - The token (for servers started with --token) lives in sessionStorage
//   only and is sent as `Authorization: Bearer <token>`.
'use strict';

const TOKEN_KEY = 'storyflow.token';

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

/**
 * Replaces `el`'s children, skipping null and flattening arrays as h()
 * does (the DOM's own replaceChildren would print them as "null").
 */
function setChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
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
function confirmDialog({ title, body, confirmLabel, cancelLabel }) {
  return new Promise((resolve) => {
    const dialog = $('#confirm-dialog');
    const ok = $('#confirm-ok');
    const cancel = $('#confirm-cancel');
    $('#confirm-title').textContent = title;
    $('#confirm-body').replaceChildren(...body.filter(Boolean).map((line) => h('p', {}, line)));
    ok.textContent = confirmLabel;
    cancel.textContent = cancelLabel || 'Cancel';
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

