// storyflow's page: a run (#run/ID): its progress, facts, diagnosis and
// timeline; the chapter being written, live; and a prominent warning when
// the model server cut a prompt.
'use strict';

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
    p.chapters = h('span', { class: 'muted run-progress-text' });
    p.facts = h('dl', { class: 'facts' });
    p.error = h('div', { class: 'run-error large' });
    p.truncated = h('div', { class: 'run-warning', role: 'alert', hidden: true });
    p.liveHead = h('h2', { class: 'live-head' });
    p.liveState = h('span', { class: 'live-state' });
    p.liveText = h('div', { class: 'live-text', 'aria-live': 'off' });
    p.live = h('section', { class: 'card live-card', 'aria-label': 'The chapter being written', hidden: true }, h('div', { class: 'card-head' }, p.liveHead, p.liveState), p.liveText);
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
          p.truncated,
          p.error,
          p.facts,
          p.diagnosis,
        ),
        h(
          'div',
          { class: 'run-side' },
          p.live,
          h('section', { class: 'card timeline-card', 'aria-label': 'Timeline' }, h('div', { class: 'card-head' }, h('h2', {}, 'Timeline'), h('span', { class: 'card-note' }, 'newest first')), p.timeline),
        ),
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
  // The error's message is in the box below: here, where it stopped.
  p.chapters.textContent = progressText(run, false);
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
  renderTruncation(p.truncated, view.events || []);
  renderLiveText();
  syncLiveText(view);
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
    setChildren(
      box,
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


// ---------------------------------------------------------- prompt truncated

/** The fix for Ollama, which cuts prompts past its context window. */
const NUM_CTX_FIX = `--llm-extra-body '{"options":{"num_ctx":16384}}'`;

/** A server that cut a prompt: said at the top of the run, with the fix. */
function renderTruncation(box, events) {
  const cut = events.find((e) => e.kind === 'prompt_truncated');
  box.hidden = !cut;
  if (!cut || box.dataset.eventId === String(cut.id)) return;
  box.dataset.eventId = String(cut.id);
  box.replaceChildren(
    h('h3', {}, 'The model server cut the prompt'),
    h('p', {}, cut.message),
    h('p', {}, 'For Ollama, start storyflow with ', h('code', { class: 'fix' }, NUM_CTX_FIX), ' (or set PARAMETER num_ctx 16384 in the Modelfile).'),
  );
}

// ---------------------------------------------------------------- live text
// While a run is active the view follows GET /api/runs/{id}/live (server-sent
// events): the chapter being written grows in place, marked "writing…", then
// "saved". One stream at a time, closed when the run ends or the view leaves.
//
// Read with fetch(), not EventSource: EventSource cannot send the
// Authorization header a server started with --token asks for. A stream cut
// while the run is still active is opened again after LIVE_RETRY_MS; the
// server then starts from the chapter so far (a `chunk` with `reset`).

/** How long a cut live stream waits before it is opened again, in ms. */
const LIVE_RETRY_MS = 2000;

let liveSource = null; // { id, abort }

function syncLiveText(view) {
  const wanted = view && view.run && isActive(view.run) ? view.id : null;
  if (liveSource && liveSource.id !== wanted) closeLiveText();
  if (!wanted || liveSource || typeof ReadableStream !== 'function') return;
  const abort = new AbortController();
  const stream = { id: wanted, abort };
  liveSource = stream;
  followLive(view, stream).finally(() => {
    if (liveSource !== stream) return;
    liveSource = null;
    if (!abort.signal.aborted) setTimeout(() => syncLiveText(state.run), LIVE_RETRY_MS);
  });
}

/** Reads one live stream until it ends, is aborted or fails. */
async function followLive(view, stream) {
  const headers = { Accept: 'text/event-stream' };
  const sent = token();
  if (sent) headers.Authorization = `Bearer ${sent}`;
  try {
    const resp = await fetch(`/api/runs/${encodeURIComponent(stream.id)}/live`, {
      headers,
      cache: 'no-store',
      credentials: 'same-origin',
      signal: stream.abort.signal,
    });
    if (!resp.ok || !resp.body) return;
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = sseParser((name, data) => onLiveEvent(view, name, data));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser(value);
    }
  } catch {
    // Aborted, or the connection dropped: syncLiveText decides what next.
  }
}

/**
 * A server-sent events parser: feed it text as it arrives; it calls
 * `emit(name, data)` for each whole event. `data:` lines join with "\n";
 * comments (`:` lines, the server's keep-alives) are skipped.
 */
function sseParser(emit) {
  let buffer = '';
  let name = 'message';
  let data = [];
  return (text) => {
    buffer += text;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (data.length) emit(name, data.join('\n'));
        name = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        continue;
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') name = value;
        else if (field === 'data') data.push(value);
      }
    }
  };
}

function onLiveEvent(view, name, text) {
  const data = liveData(text);
  if (!data) return;
  if (name === 'chunk') {
    const same = view.live && view.live.chapter === data.chapter && !data.reset;
    view.live = same ? view.live : { chapter: data.chapter, text: '', saved: false };
    view.live.text += String(data.text || '');
    view.live.saved = false;
    renderLiveText();
  } else if (name === 'saved') {
    if (view.live && view.live.chapter === data.chapter) view.live.saved = true;
    renderLiveText();
    markRunStale();
  } else if (name === 'status' && !['pending', 'running'].includes(data.status)) {
    closeLiveText();
    markRunStale();
  }
}

function closeLiveText() {
  if (!liveSource) return;
  liveSource.abort.abort();
  liveSource = null;
}

function liveData(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function renderLiveText() {
  const view = state.run;
  const root = $('#view-run');
  const p = root && root.parts;
  if (!p || !view) return;
  const live = view.live;
  p.live.hidden = !live;
  if (!live) return;
  p.live.dataset.chapter = String(live.chapter);
  p.live.dataset.state = live.saved ? 'saved' : 'writing';
  p.liveHead.textContent = `Chapter ${live.chapter}`;
  p.liveState.textContent = live.saved ? 'saved' : 'writing…';
  p.liveState.className = `live-state ${live.saved ? 'is-saved' : 'is-writing'}`;
  const follow = p.liveText.scrollTop + p.liveText.clientHeight >= p.liveText.scrollHeight - 8;
  p.liveText.textContent = live.text;
  if (follow) p.liveText.scrollTop = p.liveText.scrollHeight;
}

// Leaving the run view (or opening another run) closes its stream.
window.addEventListener('hashchange', () => {
  setTimeout(() => {
    if (!state.run || !liveSource || state.run.id !== liveSource.id) closeLiveText();
  }, 0);
});
