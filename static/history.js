// storyflow's page: what keeps a writer's work in the reader:
// a chapter's history (its versions, a word diff, restore), its lock, and
// "roll back to here" with the chapters it set aside. Loaded after story.js,
// whose chapter view calls in.
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
    rememberSetAside(story.id, [...new Set([...rememberedSetAside(story.id), ...aside])]);
    const view = state.story;
    if (view && view.id === story.id) view.chaptersSig = null; // fetch the chapters again
    toast(aside.length ? `Rolled back to chapter ${n}: ${plural(aside.length, 'chapter')} set aside.` : `Nothing after chapter ${n} to roll back.`);
  } catch (err) {
    showError(err, `Could not roll back to chapter ${n}`);
  }
  refreshNow();
}

// -------------------------------------------------------------- set aside
//
// Chapters a roll-back took out of the book keep their versions; the
// reader lists them below the chapters, each with Restore (its newest
// version back into the book). Which numbers are looked at, decided so
// that an ordinary story costs no request that is bound to fail:
// - the numbers above the last chapter, up to the story's chapter_count
//   and no further than its runs ever got (their chapters_done), stopping
//   at the first number with no versions (a roll-back takes a run of
//   chapters from K+1 on);
// - the numbers a roll-back from this tab named (kept in sessionStorage,
//   so a reload still shows them), wherever they are;
// - at most SET_ASIDE_MAX of them, and none while a run of the story is
//   active (it may be writing those very numbers, and the server refuses
//   to restore a chapter into the book meanwhile).

const SET_ASIDE_KEY = 'storyflow.setAside.';
const SET_ASIDE_MAX = 50;

function rememberedSetAside(storyId) {
  try {
    const numbers = JSON.parse(sessionStorage.getItem(SET_ASIDE_KEY + storyId) || '[]');
    return Array.isArray(numbers) ? numbers.filter((n) => Number.isInteger(n) && n > 0) : [];
  } catch {
    return [];
  }
}

function rememberSetAside(storyId, numbers) {
  try {
    if (numbers.length) sessionStorage.setItem(SET_ASIDE_KEY + storyId, JSON.stringify(numbers));
    else sessionStorage.removeItem(SET_ASIDE_KEY + storyId);
  } catch {
    // No storage (a private window's quota): the list lasts until reload.
  }
}

/** The numbers worth asking about, in order: see the decisions above. */
function setAsideCandidates(view) {
  const inBook = new Set(view.chapters.map((c) => c.number));
  const last = view.chapters.reduce((n, c) => Math.max(n, c.number), 0);
  const reached = (view.runs || []).filter((r) => !r.regenerate_chapter).reduce((n, r) => Math.max(n, r.chapters_done || 0), 0);
  const upTo = Math.min(view.story.chapter_count, reached, last + SET_ASIDE_MAX);
  const above = [];
  for (let n = last + 1; n <= upTo; n += 1) above.push(n);
  const named = rememberedSetAside(view.id).filter((n) => !inBook.has(n) && !above.includes(n));
  return { above, named };
}

/** Fills view.setAside: [{number, version, title, word_count}]. */
async function loadSetAside(view) {
  if ((view.runs || []).some(isActive)) {
    view.setAside = [];
    return;
  }
  const { above, named } = setAsideCandidates(view);
  const found = [];
  const gone = [];
  const probe = async (n) => {
    const item = await setAsideChapter(view, n);
    if (item) found.push(item);
    return item;
  };
  try {
    for (const n of above) if (found.length >= SET_ASIDE_MAX || !(await probe(n))) break;
    for (const n of named) if (found.length < SET_ASIDE_MAX && !(await probe(n))) gone.push(n);
    view.setAsideError = null;
  } catch (err) {
    view.setAsideError = err;
  }
  if (gone.length) rememberSetAside(view.id, rememberedSetAside(view.id).filter((n) => !gone.includes(n)));
  view.setAside = found.sort((a, b) => a.number - b.number);
}

/** Chapter `n`'s newest version, or null when it has none (422). */
async function setAsideChapter(view, n) {
  const path = chapterPath(view.story, n);
  let newest;
  try {
    const data = await api('GET', `${path}/versions`);
    newest = (data.versions || [])[0];
  } catch (err) {
    if (err.status === 422) return null;
    throw err;
  }
  if (!newest) return null;
  const version = await api('GET', `${path}/versions/${newest.version}`);
  return { number: n, version: newest.version, title: version.title, word_count: newest.word_count || 0 };
}

function renderSetAside(section, story, view) {
  const items = view.setAside || [];
  const error = view.setAsideError || null;
  const busy = items.map((item) => state.busy.has(`set-aside:${story.id}:${item.number}`));
  const sig = JSON.stringify([items, error && error.message, busy]);
  if (section.sig === sig) return;
  section.sig = sig;
  section.hidden = items.length === 0 && !error;
  setChildren(
    section,
    h('h2', {}, 'Set aside'),
    h('p', { class: 'muted' }, 'Chapters a roll-back took out of the book. Their history is kept: Restore puts one back as its newest version was.'),
    error ? errorView(error, 'Could not look for set-aside chapters') : null,
    h(
      'ol',
      { class: 'set-aside-list' },
      items.map((item, i) =>
        h(
          'li',
          { class: 'set-aside-item', dataset: { number: String(item.number) } },
          h('span', { class: 'set-aside-name' }, `Chapter ${item.number}: ${item.title}`),
          h('span', { class: 'muted' }, ` · ${plural(item.word_count, 'word')} · version ${item.version}`),
          h('button', {
            type: 'button',
            class: 'btn small btn-restore-set-aside',
            text: busy[i] ? 'Restoring…' : 'Restore',
            disabled: busy[i],
            title: `Put chapter ${item.number} back into the book`,
            onclick: () => restoreSetAside(story, item),
          }),
        ),
      ),
    ),
  );
}

function restoreSetAside(story, item) {
  return withBusy(`set-aside:${story.id}:${item.number}`, async () => {
    try {
      await api('POST', `${chapterPath(story, item.number)}/versions/${item.version}/restore`);
      rememberSetAside(story.id, rememberedSetAside(story.id).filter((n) => n !== item.number));
      const view = state.story;
      if (view && view.id === story.id) {
        view.setAside = (view.setAside || []).filter((x) => x.number !== item.number);
        view.chaptersSig = null; // fetch the chapters again
      }
      toast(`Chapter ${item.number}, “${item.title}”, is back in the book.`);
    } catch (err) {
      showError(err, `Could not restore chapter ${item.number}`);
    }
    refreshNow();
  });
}
