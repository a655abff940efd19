// storyflow's page: the Stories view (the page's first
// screen): the stories with their latest run and its progress in words, the
// runs, their actions, the New story form and the manuscript import.
'use strict';

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
  const shown = String(state.stories.length) + (state.storiesMore ? '+' : '');
  $('#stories-count').textContent = state.storiesLoaded ? shown : '';
  $('#stories-more').hidden = !(state.storiesLoaded && state.storiesMore);
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
    latest && [latest.id, latest.status, latest.step, latest.error, latest.progress, latest.chapters_done, latest.chapters_total, ago(latest.finished_at || latest.updated_at)],
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
    const bar = isActive(run) ? progressBar('thin') : null;
    if (bar) setProgress(bar, run);
    setChildren(
      p.latest,
      statusBadge(run.status),
      h('a', { class: 'muted story-progress', href }, progressText(run)),
      isActive(run) ? null : h('span', { class: 'muted story-when' }, timeAgo(run.finished_at || run.updated_at)),
      bar,
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

// The list holds a page of stories, so a run can belong to a story not in
// it: that story is asked for once (null while asked, or when it is gone)
// and kept, so the run card shows its title rather than a bare id.
const storiesOffPage = new Map();

function storyOffPage(storyId) {
  if (!storiesOffPage.has(storyId)) {
    storiesOffPage.set(storyId, null);
    api('GET', `/api/stories/${encodeURIComponent(storyId)}`).then(
      (story) => {
        storiesOffPage.set(storyId, story);
        render();
      },
      () => {},
    );
  }
  return storiesOffPage.get(storyId);
}

function storyLabel(storyId) {
  const orphan = state.orphans && (state.orphans.runs || []).some((r) => r.story_id === storyId);
  const story = storyById(storyId) || (orphan ? null : storyOffPage(storyId));
  if (story) return { text: story.title, missing: false };
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
  p.step.textContent = progressText(run);
  p.scope.textContent = runScope(run);
  p.scope.hidden = !p.scope.textContent;
  p.when.replaceChildren(runWhen(run));
  if (run.error) {
    // A failed run's message is in its progress line already.
    p.error.hidden = false;
    setChildren(
      p.error,
      h('code', { class: 'error-code', title: run.error.message }, run.error.code),
      run.status === 'failed' ? null : [' ', h('span', { class: 'error-message' }, run.error.message)],
    );
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

/**
 * A run's progress in a writer's words: "waiting for a worker", "writing
 * the outline", "writing chapter 4 of 12 · 3 done", "rewriting chapter 2",
 * "finishing", "done · 12 chapters", "failed at chapter 5: <message>",
 * "stopped · 3 of 12 chapters done" (cancelled). Without `withMessage`, a failure
 * says where and leaves its message to the error beside it.
 */
function progressText(run, withMessage = true) {
  const done = run.chapters_done || 0;
  const total = run.chapters_total || 0;
  const step = parseStep(run.step);
  switch (run.status) {
    case 'pending':
      return done > 0 ? `waiting for a worker · ${done} of ${total} done` : 'waiting for a worker';
    case 'running':
      if (step.kind === 'outline') return 'writing the outline';
      if (step.kind === 'rewrite') return `rewriting chapter ${step.number}`;
      if (step.kind === 'chapter') return `writing chapter ${step.number} of ${step.of} · ${done} done`;
      if (step.kind === 'finalize') return 'finishing';
      return run.step || 'starting';
    case 'completed':
      return run.regenerate_chapter ? `done · chapter ${run.regenerate_chapter} rewritten` : `done · ${plural(total, 'chapter')}`;
    case 'failed': {
      const message = withMessage && run.error && run.error.message ? `: ${run.error.message}` : '';
      return `failed${failedWhere(run, step)}${message}`;
    }
    case 'cancelled':
      return `stopped · ${done} of ${plural(total, 'chapter')} done`;
    default:
      return run.status;
  }
}

/** Where a failed run stopped: " at chapter 5", " writing the outline". */
function failedWhere(run, step) {
  if (step.kind === 'chapter' || step.kind === 'rewrite') return ` at chapter ${step.number}`;
  if (step.kind === 'outline') return ' writing the outline';
  if (step.kind === 'finalize') return ' while finishing';
  const done = run.chapters_done || 0;
  return done < (run.chapters_total || 0) && run.step ? ` at chapter ${done + 1}` : '';
}

/** The engine's step names: "outline", "chapter 4/12", "chapter 2 (rewrite)", "finalize". */
function parseStep(step) {
  const text = String(step || '');
  let m = text.match(/^chapter (\d+)\/(\d+)$/);
  if (m) return { kind: 'chapter', number: Number(m[1]), of: Number(m[2]) };
  m = text.match(/^chapter (\d+) \(rewrite\)$/);
  if (m) return { kind: 'rewrite', number: Number(m[1]) };
  if (text === 'outline' || text === 'finalize') return { kind: text };
  return { kind: text ? 'other' : 'none' };
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
      'The story, its chapters and its runs go to the trash, where you can restore them.',
      run && isActive(run) ? 'Its run in progress is cancelled.' : null,
    ],
    confirmLabel: 'Delete story',
  });
  if (!ok) return;
  await withBusy(`delete:${story.id}`, async () => {
    try {
      await api('DELETE', `/api/stories/${encodeURIComponent(story.id)}`);
      state.stories = state.stories.filter((s) => s.id !== story.id);
      state.runs = state.runs.filter((r) => r.story_id !== story.id);
      notify('ok', h('p', {}, `Deleted “${story.title}”: it is in the trash. `, h('a', { href: '#trash' }, 'Open the trash')), { timeout: 8000 });
      if (state.view.name !== 'stories') location.hash = '';
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

// ---------------------------------------------------- import a manuscript
//
// "Import a manuscript" beside "New story": POST /api/stories/import, then
// the imported story opens. Decisions:
// - A picked file is read here (FileReader, UTF-8) into the manuscript
//   area, so what is sent is what the writer sees and may still change:
//   the text area is the one source.
// - With no title typed and no `# Title` line opening the manuscript, the
//   picked file's name (without its extension) is the title; with neither,
//   the server's own message asks for one.
// - A refused import keeps everything entered and says why beside the form.

const importForm = () => $('#import-form');
let importFileName = '';
let importFileNote = '';

function openImportForm(open) {
  importForm().hidden = !open;
  $('#btn-import-story').setAttribute('aria-expanded', String(open));
  $('#btn-import-story').hidden = open;
  if (open) $('#import-markdown').focus();
}

function readManuscriptFile() {
  const input = $('#import-file');
  const file = input.files && input.files[0];
  const note = $('#import-file-note');
  importFileNote = importFileNote || note.textContent;
  if (!file) return;
  const reader = new FileReader();
  reader.addEventListener('load', () => {
    $('#import-markdown').value = String(reader.result || '');
    importFileName = file.name;
    note.textContent = `Read “${file.name}” (${bytes(file.size)}): the text is below.`;
  });
  reader.addEventListener('error', () => {
    const reason = reader.error ? reader.error.message : 'the browser gave no reason';
    const err = new ApiError({ code: 'FILE_UNREADABLE', message: `could not read “${file.name}”: ${reason}` }, 0);
    $('#import-form-error').replaceChildren(errorView(err, 'Could not read the file'));
  });
  reader.readAsText(file);
}

/** The picked file's name as a title, unless the manuscript names itself. */
function titleFromFile(markdown) {
  const firstLine = markdown.split('\n').find((line) => line.trim() !== '') || '';
  if (!importFileName || /^\s*# \S/.test(firstLine)) return '';
  return importFileName.replace(/\.[^.]+$/, '').trim();
}

function resetImportForm() {
  importForm().reset();
  importFileName = '';
  if (importFileNote) $('#import-file-note').textContent = importFileNote;
  $('#import-form-error').replaceChildren();
}

async function submitImport(ev) {
  ev.preventDefault();
  const errorBox = $('#import-form-error');
  errorBox.replaceChildren();
  for (const el of importForm().querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const markdown = $('#import-markdown').value;
  const body = { markdown };
  const title = $('#import-title').value.trim() || titleFromFile(markdown);
  if (title) body.title = title;
  const count = $('#import-chapter-count').value.trim();
  if (count !== '') body.chapter_count = Number(count);
  const submit = $('#import-submit');
  submit.disabled = true;
  submit.textContent = 'Importing…';
  try {
    const result = await api('POST', '/api/stories/import', body);
    const story = result.story;
    resetImportForm();
    openImportForm(false);
    state.stories = [story, ...state.stories.filter((s) => s.id !== story.id)];
    state.storiesDirty = true;
    toast(`Imported “${story.title}”: ${plural(result.chapters_imported, 'chapter')} of ${story.chapter_count}.`);
    if (story.warnings && story.warnings.length) {
      notify('warn', [h('p', { class: 'error-context' }, `About the outline of “${story.title}”`), ...story.warnings.map((w) => h('p', {}, w))], { key: `warn:${story.id}` });
    }
    location.hash = `#story/${encodeURIComponent(story.id)}`;
  } catch (err) {
    errorBox.replaceChildren(errorView(err, 'Could not import the manuscript'));
    const field = err.details && err.details.field;
    const input = field ? importForm().querySelector(`[name="${CSS.escape(field)}"]`) : null;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  } finally {
    submit.disabled = false;
    submit.textContent = 'Import';
  }
}


// -------------------------------------------------------------- the trash
//
// The Trash view (#trash): deleted stories, newest first as the server
// lists them, each with Restore and "Delete for good" (asked first; the
// server writes a backup before purging and says where).

async function loadTrash() {
  const data = await api('GET', '/api/trash');
  state.trash = data.stories || [];
}

function renderTrash() {
  const list = $('#trash-list');
  const items = state.trash;
  $('#trash-count').textContent = items ? String(items.length) : '';
  if (!items) {
    list.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    return;
  }
  syncList(list, items, (s) => s.id, createTrashItem, updateTrashItem, () =>
    h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, 'The trash is empty.'), h('p', {}, 'A story you delete waits here until you restore it.')),
  );
}

function createTrashItem(story) {
  const card = h('article', { class: 'card trash-item', dataset: { storyId: story.id } });
  const p = {
    title: h('h3', { class: 'story-title' }),
    meta: h('p', { class: 'story-meta' }),
    restore: h('button', { type: 'button', class: 'btn small btn-restore-story', text: 'Restore', onclick: () => restoreStory(p.story) }),
    purge: h('button', { type: 'button', class: 'btn small ghost danger-text btn-purge-story', text: 'Delete for good', onclick: () => purgeStory(p.story) }),
  };
  card.parts = p;
  card.append(h('div', {}, p.title, p.meta), h('div', { class: 'trash-actions' }, p.restore, p.purge));
  return card;
}

function updateTrashItem(card, story) {
  const p = card.parts;
  p.story = story;
  p.title.textContent = story.title;
  p.meta.replaceChildren(`${plural(story.chapters || 0, 'chapter')} written of ${story.chapter_count} · `, timeAgo(story.deleted_at, 'deleted'));
  const busy = state.busy.has(`trash:${story.id}`);
  p.restore.disabled = busy;
  p.purge.disabled = busy;
}

async function restoreStory(story) {
  await withBusy(`trash:${story.id}`, async () => {
    try {
      await api('POST', `/api/trash/${encodeURIComponent(story.id)}/restore`);
      state.trash = (state.trash || []).filter((s) => s.id !== story.id);
      state.storiesDirty = true;
      notify('ok', h('p', {}, `Restored “${story.title}”. `, h('a', { href: `#story/${encodeURIComponent(story.id)}` }, 'Open it')), { timeout: 8000 });
    } catch (err) {
      showError(err, `Could not restore “${story.title}”`);
    }
  });
  refreshNow();
}

async function purgeStory(story) {
  const ok = await confirmDialog({
    title: `Delete “${story.title}” for good?`,
    body: [
      'The story, its chapters with all their versions, and its runs are removed from the database.',
      'This cannot be undone from the page; a backup of the database is written first.',
    ],
    confirmLabel: 'Delete for good',
  });
  if (!ok) return;
  await withBusy(`trash:${story.id}`, async () => {
    try {
      const result = await api('DELETE', `/api/stories/${encodeURIComponent(story.id)}?purge=true`);
      state.trash = (state.trash || []).filter((s) => s.id !== story.id);
      toast(result && result.backup ? `Deleted “${story.title}” for good. Backup first: ${result.backup}` : `Deleted “${story.title}” for good.`);
    } catch (err) {
      showError(err, `Could not delete “${story.title}” for good`);
    }
  });
  refreshNow();
}
