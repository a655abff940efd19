// storyflow's page, part 5 of 7: what keeps a writer's work in the reader:
// a chapter's history (its versions, a word diff, restore), its lock, and
// "roll back to here". Loaded after story.js, whose chapter view calls in.
//
// Decisions:
// - A picked version is compared with the version just before it (the
//   next older one in the list); the oldest version has nothing before it
//   and is shown as plain text.
// - Restoring asks first and is offered for every version but the newest
//   (restoring the text already shown would only add a copy of it).
// - The history panel is an element kept on the chapter's <article>
//   (el.history), so the reader's polls redraw the chapter around it
//   without closing it.
'use strict';

const LOCKED_TEXT = 'Locked: runs and rewrites leave it alone';

const VERSION_SOURCE = {
  generated: 'written by a run',
  continued: 'written by a run',
  regenerated: 'rewritten',
  edited: 'edited by you',
  restored: 'restored',
  imported: 'imported',
};

function chapterPath(story, n) {
  return `/api/stories/${encodeURIComponent(story.id)}/chapters/${n}`;
}

/** Puts a chapter as the server now has it into the reader's list. */
function replaceChapter(story, chapter) {
  const view = state.story;
  if (view && view.id === story.id && view.chapters) {
    view.chapters = view.chapters.map((x) => (x.number === chapter.number ? chapter : x));
  }
}

// -------------------------------------------------------------------- lock

/** The per-chapter lock: a checkbox that PATCHes `locked`. */
function lockToggle(story, c) {
  const box = h('input', { type: 'checkbox', class: 'chapter-lock', 'aria-describedby': `chapter-${c.number}-lock-help` });
  box.checked = Boolean(c.locked);
  box.addEventListener('change', () => setLocked(story, c, box));
  return h(
    'label',
    { class: 'lock-toggle', title: LOCKED_TEXT },
    box,
    h('span', {}, 'Locked'),
    h('span', { class: 'visually-hidden', id: `chapter-${c.number}-lock-help` }, LOCKED_TEXT),
  );
}

async function setLocked(story, c, box) {
  const locked = box.checked;
  box.disabled = true;
  try {
    const chapter = await api('PATCH', chapterPath(story, c.number), { locked });
    replaceChapter(story, chapter);
    toast(locked ? `Chapter ${c.number} is locked: runs and rewrites leave it alone.` : `Chapter ${c.number} is unlocked.`);
  } catch (err) {
    box.checked = !locked;
    showError(err, `Could not ${locked ? 'lock' : 'unlock'} chapter ${c.number}`);
  } finally {
    box.disabled = false;
  }
  render();
}

// ----------------------------------------------------------------- history

function historyButton(story, c, el) {
  const open = Boolean(el.history);
  return h('button', {
    type: 'button',
    class: 'btn small ghost btn-history',
    text: 'History',
    'aria-expanded': String(open),
    'aria-controls': `chapter-${c.number}-history`,
    onclick: (ev) => toggleHistory(story, c, el, ev.currentTarget),
  });
}

function toggleHistory(story, c, el, button) {
  if (el.history) {
    el.history.remove();
    el.history = null;
    button.setAttribute('aria-expanded', 'false');
    return;
  }
  const panel = h('section', { class: 'history-panel', id: `chapter-${c.number}-history`, 'aria-label': `History of chapter ${c.number}` });
  panel.parts = {
    list: h('ol', { class: 'version-list' }),
    detail: h('div', { class: 'version-detail', 'aria-live': 'polite' }),
  };
  panel.append(h('h4', {}, `History of chapter ${c.number}`), panel.parts.list, panel.parts.detail);
  el.history = panel;
  el.appendChild(panel);
  button.setAttribute('aria-expanded', 'true');
  loadVersions(story, c.number, panel);
}

async function loadVersions(story, n, panel) {
  const { list } = panel.parts;
  list.replaceChildren(h('li', { class: 'muted' }, 'Loading the versions…'));
  try {
    const data = await api('GET', `${chapterPath(story, n)}/versions`);
    panel.versions = data.versions || [];
    list.replaceChildren(...panel.versions.map((v, i) => versionItem(story, n, panel, v, i)));
    if (!panel.versions.length) list.replaceChildren(h('li', { class: 'muted' }, 'No versions kept.'));
  } catch (err) {
    list.replaceChildren(h('li', {}, errorView(err, `Could not list the versions of chapter ${n}`)));
  }
}

function versionItem(story, n, panel, v, index) {
  const label = [
    h('span', { class: 'version-number' }, `Version ${v.version}`),
    index === 0 ? h('span', { class: 'version-current' }, ' (current)') : null,
    h('span', { class: 'version-source', dataset: { source: v.source } }, ` · ${VERSION_SOURCE[v.source] || v.source}`),
    ` · ${plural(v.word_count || 0, 'word')} · `,
    timeAgo(v.created_at),
  ];
  return h(
    'li',
    { dataset: { version: String(v.version) } },
    h('button', {
      type: 'button',
      class: 'version-item',
      'aria-pressed': 'false',
      onclick: (ev) => showVersion(story, n, panel, index, ev.currentTarget),
    }, label),
  );
}

/** Shows version `index` of the list: its diff against the one before it. */
async function showVersion(story, n, panel, index, button) {
  for (const b of panel.parts.list.querySelectorAll('.version-item')) b.setAttribute('aria-pressed', String(b === button));
  const v = panel.versions[index];
  const before = panel.versions[index + 1] || null;
  const { detail } = panel.parts;
  detail.replaceChildren(h('p', { class: 'muted' }, `Loading version ${v.version}…`));
  try {
    const body = before
      ? diffView(await api('GET', `${chapterPath(story, n)}/versions/${v.version}/diff?against=${before.version}`), before)
      : firstVersionView(await api('GET', `${chapterPath(story, n)}/versions/${v.version}`));
    detail.replaceChildren(...body, restoreButton(story, n, panel, v, index === 0));
  } catch (err) {
    detail.replaceChildren(errorView(err, `Could not show version ${v.version}`));
  }
}

function diffView(diff, before) {
  const parts = (diff.parts || []).map((part) => {
    if (part.op === 'delete') return h('del', { class: 'diff-delete' }, part.text);
    if (part.op === 'insert') return h('ins', { class: 'diff-insert' }, part.text);
    return part.text;
  });
  return [
    h(
      'p',
      { class: 'diff-summary' },
      `Against version ${before.version}: `,
      h('span', { class: 'diff-count-insert' }, `+${plural(diff.words_inserted || 0, 'word')}`),
      ', ',
      h('span', { class: 'diff-count-delete' }, `−${plural(diff.words_deleted || 0, 'word')}`),
    ),
    h('div', { class: 'version-diff' }, parts),
  ];
}

function firstVersionView(version) {
  return [
    h('p', { class: 'diff-summary' }, `The first version, “${version.title}”: nothing before it to compare with.`),
    h('div', { class: 'version-diff' }, version.content),
  ];
}

function restoreButton(story, n, panel, v, current) {
  return h('div', { class: 'form-actions' }, h('button', {
    type: 'button',
    class: 'btn small btn-restore-version',
    text: 'Restore this version',
    disabled: current,
    title: current ? 'this is the chapter’s text now' : null,
    onclick: (ev) => restoreVersion(story, n, panel, v, ev.currentTarget),
  }));
}

async function restoreVersion(story, n, panel, v, button) {
  const ok = await confirmDialog({
    title: `Restore version ${v.version} of chapter ${n}?`,
    body: [
      `The chapter’s text becomes version ${v.version}’s again (${plural(v.word_count || 0, 'word')}).`,
      'The text it has now stays in its history as a version: nothing is lost.',
    ],
    confirmLabel: 'Restore this version',
  });
  if (!ok) return;
  button.disabled = true;
  try {
    const chapter = await api('POST', `${chapterPath(story, n)}/versions/${v.version}/restore`);
    replaceChapter(story, chapter);
    toast(`Chapter ${n} is version ${v.version} again.`);
    panel.parts.detail.replaceChildren();
    render();
    await loadVersions(story, n, panel);
  } catch (err) {
    button.disabled = false;
    showError(err, `Could not restore version ${v.version} of chapter ${n}`);
  }
}

// --------------------------------------------------------------- roll back

function rollbackButton(story, c) {
  return h('button', {
    type: 'button',
    class: 'btn small ghost btn-rollback',
    text: 'Roll back to here',
    title: `Chapters after ${c.number} leave the book; the next run writes from ${c.number + 1}`,
    onclick: () => rollBackTo(story, c.number),
  });
}

async function rollBackTo(story, n) {
  const ok = await confirmDialog({
    title: `Roll “${story.title}” back to chapter ${n}?`,
    body: [
      `Chapters after ${n} leave the book; they stay in their history and can be restored.`,
      `The next run writes from chapter ${n + 1}.`,
    ],
    confirmLabel: 'Roll back',
  });
  if (!ok) return;
  try {
    const result = await api('POST', `/api/stories/${encodeURIComponent(story.id)}/rollback`, { to_chapter: n });
    const aside = result.set_aside || [];
    const view = state.story;
    if (view && view.id === story.id) view.chaptersSig = null; // fetch the chapters again
    toast(aside.length ? `Rolled back to chapter ${n}: ${plural(aside.length, 'chapter')} set aside.` : `Nothing after chapter ${n} to roll back.`);
  } catch (err) {
    showError(err, `Could not roll back to chapter ${n}`);
  }
  refreshNow();
}
