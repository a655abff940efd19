// storyflow's page: a story’s settings (its fields and its
// outline) and the live outline preview, here and on the new-story form.
//
// Decisions:
// - The preview asks the server (POST /api/outline/preview) rather than
//   parsing here: the page then shows exactly the chapters and warnings a
//   save and a run would see. Calls wait for a pause in typing
//   (PREVIEW_DELAY_MS), and an answer older than the latest question is
//   dropped, so a slow answer never overwrites a newer one.
// - The settings panel is a closed <details> at the top of the story: the
//   reader stays the story view's first job.
// - Save sends only the fields that changed, so it never overwrites a
//   field changed elsewhere (the CLI) with what the form showed before.
// - An empty "Chapters" field means no explicit count (sent as null): the
//   count comes from the outline again, else the server's default.
// - Unsaved settings are guarded like an open chapter editor: the panel
//   joins story.js's openEditors, with a label for the question.
'use strict';

const PREVIEW_DELAY_MS = 300;

/**
 * Keeps `box` showing the outline in `outline` as the server parses it,
 * with the explicit count from the `count` input when it holds one.
 * Returns { refresh(), clear() }.
 */
function outlinePreview(outline, count, box) {
  let timer = null;
  let asked = 0;
  const refresh = async () => {
    clearTimeout(timer);
    const mine = ++asked;
    const body = { outline: outline.value };
    const n = count ? count.value.trim() : '';
    if (n !== '') body.chapter_count = Number(n);
    box.setAttribute('aria-busy', 'true');
    try {
      const preview = await api('POST', '/api/outline/preview', body);
      if (mine === asked) drawPreview(box, preview, outline.value);
    } catch (err) {
      if (mine === asked) box.replaceChildren(errorView(err, 'Could not preview the outline'));
    } finally {
      if (mine === asked) box.removeAttribute('aria-busy');
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, PREVIEW_DELAY_MS);
  };
  outline.addEventListener('input', schedule);
  if (count) count.addEventListener('input', schedule);
  const clear = () => {
    clearTimeout(timer);
    asked += 1;
    box.replaceChildren();
  };
  return { refresh, clear };
}

function drawPreview(box, preview, text) {
  const chapters = preview.chapters || [];
  const warnings = preview.warnings || [];
  const source = SOURCE_LABEL[preview.chapter_count_source] || preview.chapter_count_source;
  setChildren(
    box,
    h('p', { class: 'preview-count' }, `${plural(preview.chapter_count, 'chapter')}, ${source}`),
    chapters.length
      ? h(
          'ol',
          { class: 'preview-chapters' },
          chapters.map((c) => h('li', { dataset: { number: String(c.number) } }, `${c.number}. ${c.title || `Chapter ${c.number}`}`)),
        )
      : h('p', { class: 'muted preview-empty' }, text.trim() ? 'No chapter found in this outline.' : 'No outline: the first run writes one from the premise.'),
    warnings.length ? h('ul', { class: 'preview-warnings' }, warnings.map((w) => h('li', {}, w))) : null,
  );
}

// ------------------------------------------------------- story settings

/** The panel's plain fields, in the order shown; the outline comes after. */
const SETTINGS_FIELDS = [
  { name: 'title', label: 'Title', attrs: { maxlength: '500' } },
  { name: 'premise', label: 'Premise', textarea: 3 },
  { name: 'author', label: 'Author', optional: true, attrs: { maxlength: '200' } },
  { name: 'language', label: 'Language', help: 'The language the book is written in.', attrs: { placeholder: 'English' } },
  { name: 'pov', label: 'Point of view', optional: true, attrs: { placeholder: 'close third person' } },
  { name: 'tense', label: 'Tense', optional: true, attrs: { placeholder: 'past' } },
  { name: 'style', label: 'Style', optional: true, textarea: 3, help: 'Notes on tone and voice, given to every prompt.' },
  { name: 'target_words', label: 'Target words', number: { min: '100', max: '20000' }, help: 'Words asked of each chapter.' },
  {
    name: 'chapter_count',
    label: 'Chapters',
    optional: true,
    number: { min: '1', max: '1000' },
    help: 'Leave empty to count the outline’s chapters.',
  },
];

/** The form's values for `story`, all as the inputs hold them: text. */
function settingsValues(story) {
  const values = {};
  for (const field of SETTINGS_FIELDS) values[field.name] = String(story[field.name] ?? '');
  values.chapter_count = story.chapter_count_source === 'explicit' ? String(story.chapter_count) : '';
  values.outline = story.outline || '';
  return values;
}

function settingsInput(field) {
  const id = `settings-${field.name.replace(/_/g, '-')}`;
  const props = { id, name: field.name, autocomplete: 'off', ...field.attrs };
  if (field.textarea) return h('textarea', { ...props, rows: String(field.textarea) });
  if (field.number) return h('input', { ...props, type: 'number', step: '1', inputmode: 'numeric', ...field.number });
  return h('input', { ...props, type: 'text' });
}

/** Builds the "Story settings" panel for the story view (story.js). */
function settingsPanel() {
  const inputs = {};
  const fields = SETTINGS_FIELDS.map((field) => {
    inputs[field.name] = settingsInput(field);
    return h(
      'label',
      { class: `field${field.number ? ' field-narrow' : ''}` },
      h('span', { class: 'label' }, field.label, field.optional ? h('span', { class: 'optional' }, 'optional') : null),
      inputs[field.name],
      field.help ? h('span', { class: 'help' }, field.help) : null,
    );
  });
  inputs.outline = h('textarea', { id: 'settings-outline', name: 'outline', rows: '12', class: 'mono', spellcheck: 'false' });
  const previewBox = h('div', { class: 'outline-preview', id: 'settings-outline-preview', 'aria-live': 'polite', 'aria-label': 'Outline as parsed' });
  const error = h('div', { class: 'form-error', id: 'settings-error' });
  const saved = h('div', { class: 'settings-saved', id: 'settings-warnings', 'aria-live': 'polite' });
  const save = h('button', { type: 'submit', class: 'btn primary', id: 'settings-save', text: 'Save settings' });
  const panel = h('details', { class: 'card settings-panel', id: 'story-settings' });
  const revert = h('button', {
    type: 'button',
    class: 'btn ghost',
    id: 'settings-revert',
    text: 'Discard changes',
    onclick: () => fillSettings(panel, panel.story),
  });
  const form = h(
    'form',
    {
      class: 'settings-form',
      novalidate: true,
      'aria-label': 'Story settings',
      onsubmit: (ev) => {
        ev.preventDefault();
        saveSettings(panel);
      },
    },
    h('div', { class: 'settings-fields' }, fields),
    h(
      'div',
      { class: 'settings-outline' },
      h(
        'label',
        { class: 'field' },
        h('span', { class: 'label' }, 'Outline'),
        inputs.outline,
        h('span', { class: 'help' }, 'One chapter per line: ', h('code', {}, '## Chapter 3: The Storm'), ', ', h('code', {}, 'Chapter 3 - The Storm'), ' or ', h('code', {}, '3. The Storm'), '.'),
      ),
      h('div', { class: 'field' }, h('span', { class: 'label' }, 'Chapters found'), previewBox),
    ),
    error,
    saved,
    h('div', { class: 'form-actions' }, save, revert),
  );
  form.addEventListener('input', syncUnloadGuard);
  append(panel, [h('summary', {}, 'Story settings'), form]);
  panel.parts = { inputs, error, saved, save };
  panel.preview = outlinePreview(inputs.outline, inputs.chapter_count, previewBox);
  panel.editor = {
    el: panel,
    label: 'the story settings',
    isDirty: () => Boolean(panel.base) && Object.entries(inputs).some(([name, input]) => input.value !== panel.base[name]),
  };
  openEditors.add(panel.editor);
  return panel;
}

/** Shows the story as it is now, unless the writer has unsaved changes. */
function updateSettingsPanel(panel, story) {
  const first = !panel.story;
  panel.story = story;
  if (!first && panel.filledFrom === story.updated_at) return;
  if (panel.editor.isDirty()) return;
  fillSettings(panel, story);
}

function fillSettings(panel, story) {
  const values = settingsValues(story);
  panel.base = values;
  panel.filledFrom = story.updated_at;
  for (const [name, input] of Object.entries(panel.parts.inputs)) {
    input.value = values[name];
    input.removeAttribute('aria-invalid');
  }
  panel.parts.error.replaceChildren();
  syncUnloadGuard();
  panel.preview.refresh();
}

/** The changed fields, as the PATCH wants them. */
function settingsChanges(panel) {
  const changes = {};
  for (const [name, input] of Object.entries(panel.parts.inputs)) {
    if (input.value === panel.base[name]) continue;
    const text = input.value.trim();
    if (name === 'chapter_count') changes[name] = text === '' ? null : Number(text);
    else if (name === 'target_words') changes[name] = text === '' ? null : Number(text);
    else changes[name] = input.value;
  }
  return changes;
}

async function saveSettings(panel) {
  const { inputs, error, saved, save } = panel.parts;
  error.replaceChildren();
  for (const input of Object.values(inputs)) input.removeAttribute('aria-invalid');
  const changes = settingsChanges(panel);
  if (Object.keys(changes).length === 0) {
    toast('Nothing to save: the settings are as stored.');
    return;
  }
  save.disabled = true;
  save.textContent = 'Saving…';
  try {
    const story = await api('PATCH', `/api/stories/${encodeURIComponent(panel.story.id)}`, changes);
    const warnings = story.warnings || [];
    const view = state.story;
    if (view && view.id === story.id) view.story = story;
    panel.story = story;
    fillSettings(panel, story);
    setChildren(
      saved,
      warnings.length ? h('div', { class: 'preview-warnings-box' }, h('p', { class: 'label' }, 'Saved. About the outline:'), h('ul', { class: 'preview-warnings' }, warnings.map((w) => h('li', {}, w)))) : null,
    );
    toast(`Saved the settings of “${story.title}”.`);
    render();
  } catch (err) {
    error.replaceChildren(errorView(err, 'Could not save the settings'));
    const input = err.details && inputs[err.details.field];
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  } finally {
    save.disabled = false;
    save.textContent = 'Save settings';
  }
}

// ------------------------------------------------ the new-story form

{
  const newStoryPreview = outlinePreview($('#story-outline'), $('#story-chapter-count'), $('#story-outline-preview'));
  form().addEventListener('reset', () => newStoryPreview.clear());
}
