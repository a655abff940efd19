// storyflow's page: the story bible editor in the story view (#bible):
// list, add, edit, pin and remove the characters, places, objects, facts and
// threads each chapter's prompt may carry. Loaded after story.js, before
// app.js; it shares their global scope.
//
// - The panel owns its DOM and its data: it loads GET .../bible when it is
//   made (once per story shown) and after each change, never on the story
//   view's polls, so an entry being edited keeps its form.
// - Aliases are typed as one comma-separated line and sent as a list.
// - Server text reaches the page as text only (h()).
'use strict';

const BIBLE_KINDS = ['character', 'place', 'object', 'fact', 'thread'];

/** The bible panel of story `storyId`: a side block with its own list and form. */
function biblePanel(storyId) {
  const panel = {
    storyId,
    list: h('ul', { class: 'bible-list', id: 'bible-list', 'aria-live': 'polite' }),
    status: h('p', { class: 'muted bible-status' }),
    form: null,
  };
  panel.addButton = h('button', {
    type: 'button',
    class: 'btn small',
    id: 'bible-add',
    'aria-expanded': 'false',
    text: 'Add entry',
    onclick: () => openBibleForm(panel, null),
  });
  panel.formSlot = h('div', { class: 'bible-form-slot' });
  panel.root = h(
    'section',
    { class: 'side-block bible-block', id: 'bible', 'aria-labelledby': 'bible-title' },
    h('h2', { id: 'bible-title' }, 'Story bible'),
    h('p', { class: 'help' }, 'Pinned entries go into every chapter’s prompt; the others when the chapter’s outline or the story so far names them.'),
    panel.status,
    panel.list,
    panel.formSlot,
    panel.addButton,
  );
  loadBible(panel);
  return panel.root;
}

function biblePath(panel, entryId) {
  const base = `/api/stories/${encodeURIComponent(panel.storyId)}/bible`;
  return entryId ? `${base}/${encodeURIComponent(entryId)}` : base;
}

async function loadBible(panel) {
  try {
    const data = await api('GET', biblePath(panel));
    renderBible(panel, (data && data.entries) || []);
  } catch (err) {
    setChildren(panel.status, errorView(err, 'The bible cannot be read'));
  }
}

function renderBible(panel, entries) {
  panel.status.textContent = entries.length ? '' : 'No entries yet: add the characters and places the chapters must keep straight.';
  setChildren(panel.list, entries.map((entry) => bibleEntryView(panel, entry)));
}

function bibleEntryView(panel, entry) {
  const pin = h('button', {
    type: 'button',
    class: 'btn small ghost bible-pin',
    'aria-pressed': entry.pinned ? 'true' : 'false',
    text: entry.pinned ? 'Unpin' : 'Pin',
    onclick: () => changeBibleEntry(panel, entry, { pinned: !entry.pinned }),
  });
  return h(
    'li',
    { class: 'bible-entry', dataset: { id: entry.id, kind: entry.kind } },
    h(
      'p',
      { class: 'bible-entry-head' },
      h('strong', { class: 'bible-name' }, entry.name),
      ' ',
      h('span', { class: 'badge bible-kind' }, entry.kind),
      entry.pinned ? h('span', { class: 'badge bible-pinned' }, 'pinned') : null,
    ),
    entry.aliases.length ? h('p', { class: 'muted bible-aliases' }, `also: ${entry.aliases.join(', ')}`) : null,
    entry.description ? h('p', { class: 'pre bible-description' }, entry.description) : null,
    h(
      'div',
      { class: 'bible-actions' },
      h('button', { type: 'button', class: 'btn small ghost bible-edit', text: 'Edit', onclick: () => openBibleForm(panel, entry) }),
      pin,
      h('button', { type: 'button', class: 'btn small ghost danger-text bible-remove', text: 'Remove', onclick: () => removeBibleEntry(panel, entry) }),
    ),
  );
}

/** Opens the form to add an entry (`entry` null) or to edit one. */
function openBibleForm(panel, entry) {
  const field = (label, control, help) => h('label', { class: 'field' }, h('span', { class: 'label' }, label), control, help ? h('span', { class: 'help' }, help) : null);
  const kind = h('select', { name: 'kind', id: 'bible-kind' }, BIBLE_KINDS.map((k) => h('option', { value: k }, k)));
  const name = h('input', { name: 'name', id: 'bible-name', type: 'text', maxlength: '200', autocomplete: 'off', placeholder: 'Mara Okafor' });
  const aliases = h('input', { name: 'aliases', id: 'bible-aliases', type: 'text', autocomplete: 'off', placeholder: 'the Captain, Mara' });
  const description = h('textarea', { name: 'description', id: 'bible-description', rows: '4', maxlength: '10000' });
  const pinned = h('input', { name: 'pinned', id: 'bible-pinned', type: 'checkbox' });
  const error = h('div', { class: 'form-error', id: 'bible-form-error' });
  if (entry) {
    kind.value = entry.kind;
    name.value = entry.name;
    aliases.value = entry.aliases.join(', ');
    description.value = entry.description;
    pinned.checked = entry.pinned;
  }
  const save = h('button', { type: 'submit', class: 'btn primary', id: 'bible-save', text: entry ? 'Save entry' : 'Add entry' });
  const form = h(
    'form',
    { class: 'card bible-form', id: 'bible-form', novalidate: true },
    field('Kind', kind),
    field('Name', name),
    field('Aliases', aliases, 'Other names it goes by, separated by commas.'),
    field('Description', description),
    h('label', { class: 'field field-check' }, pinned, ' Pinned: in every chapter’s prompt'),
    error,
    h('div', { class: 'form-actions' }, save, h('button', { type: 'button', class: 'btn ghost', text: 'Cancel', onclick: () => closeBibleForm(panel) })),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {
      kind: kind.value,
      name: name.value,
      aliases: aliases.value.split(',').map((a) => a.trim()).filter(Boolean),
      description: description.value,
      pinned: pinned.checked,
    };
    save.disabled = true;
    try {
      if (entry) await api('PATCH', biblePath(panel, entry.id), body);
      else await api('POST', biblePath(panel), body);
      closeBibleForm(panel);
      await loadBible(panel);
    } catch (err) {
      setChildren(error, errorView(err, entry ? 'The entry was not saved' : 'The entry was not added'));
    } finally {
      save.disabled = false;
    }
  });
  setChildren(panel.formSlot, form);
  panel.addButton.hidden = true;
  panel.addButton.setAttribute('aria-expanded', 'true');
  name.focus();
}

function closeBibleForm(panel) {
  setChildren(panel.formSlot);
  panel.addButton.hidden = false;
  panel.addButton.setAttribute('aria-expanded', 'false');
}

async function changeBibleEntry(panel, entry, patch) {
  try {
    await api('PATCH', biblePath(panel, entry.id), patch);
    await loadBible(panel);
  } catch (err) {
    showError(err, 'The entry was not changed');
  }
}

async function removeBibleEntry(panel, entry) {
  const sure = await confirmDialog({
    title: `Remove “${entry.name}” from the bible?`,
    body: ['Chapters already written keep their text; later prompts will not carry this entry.'],
    confirmLabel: 'Remove',
    cancelLabel: 'Keep it',
  });
  if (!sure) return;
  try {
    await api('DELETE', biblePath(panel, entry.id));
    await loadBible(panel);
  } catch (err) {
    showError(err, 'The entry was not removed');
  }
}
