// storyflow's page: a story (#story/ID): the reader, its
// chapter list, the chapter editor, and the guard that never drops an
// unsaved edit without asking.
'use strict';

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
      await loadSetAside(view);
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
    p.bible = biblePanel(story.id);
    p.runs = h('div', { class: 'list' });
    p.moreRuns = h('p', { class: 'muted more-runs' });
    p.toc = h('ol', { class: 'toc' });
    p.chaptersHead = h('h2', {});
    p.placeholder = placeholderNotice('placeholder-notice');
    p.tocPlaceholder = h('p', { class: 'placeholder-tag', hidden: true }, 'placeholder text');
    p.chapters = h('div', { class: 'reader' });
    p.settings = settingsPanel();
    p.setAside = h('section', { class: 'set-aside', id: 'set-aside', 'aria-label': 'Set-aside chapters', hidden: true });
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
          p.bible,
          h('section', { class: 'side-block runs-block' }, h('h2', {}, 'Runs'), p.runs, p.moreRuns),
          h('section', { class: 'side-block toc-block', id: 'contents' }, h('h2', {}, 'Contents'), p.tocPlaceholder, p.toc),
        ),
        h('section', { class: 'story-main', 'aria-label': 'Chapters' }, p.settings, p.chaptersHead, p.placeholder, p.chapters, p.setAside),
      ),
    );
    root.parts = p;
  }
  const p = root.parts;
  p.story = story;
  p.title.textContent = story.title;
  updateSettingsPanel(p.settings, story);
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
  const placeholder = generatorName() === 'builtin' && chapters.length > 0;
  p.placeholder.hidden = !placeholder;
  p.tocPlaceholder.hidden = !placeholder;
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
    const last = c.number === chapters[chapters.length - 1].number;
    const sig = JSON.stringify([c.title, c.word_count, c.created_at, c.updated_at, String(c.content || '').length, rewriting.has(c.number), c.locked, last]);
    if (el.sig !== sig) {
      el.sig = sig;
      setChildren(el, chapterContent(c, story, el, { rewriting: rewriting.has(c.number), last }), el.history);
    }
  }, () =>
    h(
      'div',
      { class: 'empty' },
      h('p', { class: 'empty-title' }, 'Nothing written yet.'),
      h('p', {}, active ? 'Chapters appear here as they are saved.' : 'Start a run to write this story.'),
    ),
  );
  renderSetAside(p.setAside, story, view);
}

/**
 * The generator's name as GET /api/health gives it: `generator` is the
 * name today; should it become an object (reachability), its `name`.
 */
function generatorName() {
  const health = state.health;
  const generator = health && health.generator;
  if (typeof generator === 'string') return generator;
  if (generator && typeof generator.name === 'string') return generator.name;
  return health && typeof health.generator_name === 'string' ? health.generator_name : null;
}

/**
 * The built-in generator writes stand-in prose from the premise and
 * outline: a writer should never take it for a model's work. The server
 * does not record which generator wrote a chapter, so the label follows
 * the generator the server runs now.
 */
function placeholderNotice(cls) {
  return h(
    'div',
    { class: cls, role: 'note', hidden: true },
    h('p', { class: 'placeholder-title' }, 'Placeholder text from the built-in generator'),
    h(
      'p',
      {},
      'An offline stand-in written from the premise and outline: connect a model server (',
      h('code', {}, 'storyflow serve --generator openai'),
      ', Ollama by default) to write real prose.',
    ),
  );
}

function chapterView(chapter) {
  return h('article', { class: 'chapter', id: `chapter-${chapter.number}`, dataset: { number: String(chapter.number) } });
}

function chapterContent(c, story, el, { rewriting, last }) {
  const paragraphs = String(c.content || '')
    .split(/\n\s*\n/)
    .map((t) => t.trim())
    .filter(Boolean);
  const rewrite = h('button', {
    type: 'button',
    class: 'btn small ghost btn-rewrite-chapter',
    text: rewriting ? 'Rewriting…' : 'Rewrite',
    title: c.locked ? 'Unlock the chapter to rewrite it' : 'Write this chapter again; the others stay as they are',
    onclick: () => rewriteChapter(story, c, rewrite),
  });
  rewrite.disabled = Boolean(rewriting) || Boolean(c.locked);
  const meta = [plural(c.word_count, 'word')];
  if (c.updated_at) meta.push(`changed ${ago(c.updated_at)}`);
  if (rewriting) meta.push('being rewritten');
  if (c.locked) meta.push(LOCKED_TEXT);
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
          historyButton(story, c, el),
          last ? null : rollbackButton(story, c),
          lockToggle(story, c),
        ),
      ),
      h('h3', { class: 'chapter-title' }, c.title),
      h('p', { class: 'chapter-meta' }, meta.join(' · ')),
      qualityBadges(c.quality, c.word_count),
    ),
    paragraphs.map((t) => h('p', {}, t)),
  ];
}

/**
 * Badges for the quality signals past their thresholds (the same defaults
 * `storyflow diagnose --story` reports), each explained in plain words on
 * hover and focus. Nothing when the chapter is fine.
 */
function qualityBadges(q, words) {
  if (!q) return null;
  const badges = [];
  const badge = (label, why) =>
    badges.push(h('span', { class: 'quality-badge', tabindex: '0', title: why, 'aria-label': `${label}: ${why}` }, label));
  if (q.length_score < 50) badge('Length', `length score ${q.length_score} of 100: far from the story's target length`);
  if (q.repetition > 0.15) badge('Repeats itself', `${Math.round(q.repetition * 100)}% of its 4-word phrases are repeats`);
  const repeated = q.repeated_sentences || [];
  if (repeated.length) badge('Repeated sentences', `${repeated.length} sentence(s) occur more than once, e.g. “${repeated[0].sentence}” ${repeated[0].count} times`);
  const stock = (q.stock_phrases || []).reduce((n, p) => n + p.count, 0);
  if (words > 0 && (stock * 1000) / words > 2) badge('Stock phrases', (q.stock_phrases || []).map((p) => `“${p.phrase}” ×${p.count}`).join(', '));
  const variants = q.name_variants || [];
  if (variants.length) badge('Name variants', variants.map((v) => `${v.name} (like ${v.like})`).join(', '));
  return badges.length ? h('p', { class: 'quality-badges' }, badges) : null;
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
    onclick: async () => {
      if (editor.isDirty() && !(await confirmDiscard([editor]))) return;
      closeChapterEditor(el);
    },
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
  const editor = {
    el,
    number: n,
    title: c.title,
    isDirty: () => title.value !== c.title || content.value !== c.content,
  };
  el.editor = editor;
  openEditors.add(editor);
  form.addEventListener('input', syncUnloadGuard);
  el.replaceChildren(form);
  title.focus();
}

function closeChapterEditor(el) {
  openEditors.delete(el.editor);
  el.editor = null;
  el.editing = false;
  el.sig = null; // drawn again from the chapter as it is now
  syncUnloadGuard();
  render();
}

// ------------------------------------------------------- unsaved edits
//
// An edit lives only in its form until it is saved, so the page asks
// before anything would drop it: an in-page link, back or forward, a typed
// address (app.js's router calls confirmDiscard), the editor's Cancel, and
// closing or reloading the tab (beforeunload, set only while an edit is
// dirty, so a clean page keeps the browser's back-forward cache). Several
// chapters can be open at once; one question covers all of them. Moving
// between chapters of the same story keeps every editor open: the reader
// shows them all, so that drops nothing and asks nothing.

/**
 * The editors on the page: chapters {el, number, title, isDirty()}, and
 * the story settings (settings.js) {el, label, isDirty()}.
 */
const openEditors = new Set();

function dirtyEditors() {
  return [...openEditors].filter((editor) => editor.isDirty());
}

function hasUnsavedEdits() {
  return dirtyEditors().length > 0;
}

function onBeforeUnload(ev) {
  ev.preventDefault();
  // Older browsers ask only when returnValue is set.
  ev.returnValue = '';
}

let unloadGuarded = false;

function syncUnloadGuard() {
  const dirty = hasUnsavedEdits();
  if (dirty === unloadGuarded) return;
  unloadGuarded = dirty;
  if (dirty) window.addEventListener('beforeunload', onBeforeUnload);
  else window.removeEventListener('beforeunload', onBeforeUnload);
}

let discardQuestion = null;

/**
 * Asks whether the unsaved edits (of `editors`, by default every open
 * editor) may be dropped; resolves true, with those editors closed, when
 * the writer says so. One question at a time: a second navigation while
 * it is open waits for the same answer.
 */
function confirmDiscard(editors) {
  const dirty = (editors || [...openEditors]).filter((editor) => editor.isDirty());
  if (dirty.length === 0) return Promise.resolve(true);
  if (discardQuestion) return discardQuestion;
  const name = (e) => e.label || `chapter ${e.number} (“${e.title}”)`;
  const names = dirty.map(name).join(', ');
  const one = dirty.length === 1 ? dirty[0] : null;
  discardQuestion = confirmDialog({
    title: one ? `Discard your changes to ${one.label || `chapter ${one.number}`}?` : 'Discard your unsaved changes?',
    body: [`Your changes to ${names} are not saved.`, 'Keep editing and press Save to keep them, or discard them.'],
    confirmLabel: 'Discard changes',
    cancelLabel: 'Keep editing',
  })
    .then((discard) => {
      if (discard) {
        for (const editor of editors || [...openEditors]) {
          openEditors.delete(editor);
          editor.el.editing = false;
          editor.el.sig = null;
        }
        syncUnloadGuard();
      }
      return discard;
    })
    .finally(() => {
      discardQuestion = null;
    });
  return discardQuestion;
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
      'A run writes this chapter again; the text it has now, edits included, stays in its history and can be restored.',
      'The other chapters stay exactly as they are.',
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
  return h('nav', { class: 'crumbs' }, h('a', { href: '#', class: 'back' }, '← Your stories'));
}

