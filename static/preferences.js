// storyflow's page: the Settings view (#preferences), the writer's
// settings of GET|PUT /api/settings: which generator writes, the model
// server and its models, temperature, context size, prices, the API key.
// (static/settings.js is a story's own settings panel: another thing.)
// Loaded after core.js and before app.js, it shares their global scope.
//
// - The form is built once per visit from the settings in force, so a poll
//   never wipes what the writer is typing.
// - A setting a `serve` flag gave is shown disabled, "set by a serve flag".
// - The API key is write-only: the page says "set" or "not set" and sends a
//   key only when one is typed; "Clear key" sends "".
// - "Test connection" tries what the form says (generator, URL, model, a
//   typed key) without saving it.
'use strict';

const prefs = { data: null, built: false, loading: null };

/** The form's fields: name, label, input type, help. */
const PREF_FIELDS = [
  ['llm_url', 'Server URL', 'text', 'An OpenAI-compatible server, such as Ollama at http://127.0.0.1:11434/v1.'],
  ['llm_model', 'Model', 'text', 'The model that writes the chapters.'],
  ['outline_model', 'Outline model', 'text', 'Empty: the model above.'],
  ['summary_model', 'Summary model', 'text', 'Empty: the model above.'],
  ['temperature', 'Temperature', 'number', 'From 0 to 2; empty: the server’s default.'],
  ['context_tokens', 'Context tokens', 'number', 'What the model’s context window holds; prompts are fitted into it.'],
  ['price_input_per_mtok', 'Price per million prompt tokens', 'number', 'Empty: costs are not shown.'],
  ['price_output_per_mtok', 'Price per million completion tokens', 'number', 'Empty: costs are not shown.'],
];

async function loadPreferences() {
  if (prefs.data && prefs.built) return;
  prefs.loading = prefs.loading || api('GET', '/api/settings').finally(() => {
    prefs.loading = null;
  });
  prefs.data = await prefs.loading;
}

/** Called by app.js when the view is left, so the next visit reads afresh. */
function forgetPreferences() {
  prefs.data = null;
  prefs.built = false;
}

function prefFixed(name) {
  const data = prefs.data;
  return Boolean(data && data.fixed_by_flags && data.fixed_by_flags.includes(name));
}

function flagNote(name) {
  return prefFixed(name) ? h('span', { class: 'help flag-note', dataset: { flag: name } }, 'set by a serve flag') : null;
}

function prefInput(name, type) {
  const value = prefs.data[name];
  const props = { id: `prefs-${name}`, name, type, autocomplete: 'off', disabled: prefFixed(name) };
  if (type === 'number') Object.assign(props, { step: 'any', min: '0', inputmode: 'decimal' });
  const input = h('input', props);
  input.value = value === null || value === undefined ? '' : String(value);
  return input;
}

function renderPreferences() {
  const view = $('#view-preferences');
  if (prefs.built || !prefs.data) {
    if (!prefs.data && !view.childElementCount) setChildren(view, h('p', { class: 'help' }, 'Loading the settings…'));
    return;
  }
  prefs.built = true;
  const data = prefs.data;
  const generator = h(
    'select',
    { id: 'prefs-generator', name: 'generator', disabled: prefFixed('generator') || data.generator_locked },
    data.generator_locked ? h('option', { value: 'command' }, 'A local command (serve flags)') : null,
    h('option', { value: 'builtin' }, 'Built-in (placeholder text, no model)'),
    h('option', { value: 'openai' }, 'A model server (OpenAI-compatible)'),
  );
  generator.value = data.generator;
  const extra = h('textarea', { id: 'prefs-llm_extra_body', name: 'llm_extra_body', rows: 3, class: 'mono', disabled: prefFixed('llm_extra_body') });
  extra.value = data.llm_extra_body && Object.keys(data.llm_extra_body).length ? JSON.stringify(data.llm_extra_body) : '';
  const key = h('input', { id: 'prefs-llm_api_key', name: 'llm_api_key', type: 'password', autocomplete: 'new-password', disabled: prefFixed('llm_api_key'), placeholder: data.llm_api_key_set ? 'set: type to replace it' : 'not set' });
  const form = h(
    'form',
    { id: 'prefs-form', class: 'card story-form prefs-form', novalidate: true, onsubmit: savePreferences },
    h('label', { class: 'field' }, h('span', { class: 'label' }, 'Generator'), generator, flagNote('generator'),
      data.generator_locked ? h('span', { class: 'help flag-note' }, 'set by a serve flag: the command generator is chosen with serve flags only') : null),
    PREF_FIELDS.map(([name, label, type, help]) =>
      h('label', { class: 'field' }, h('span', { class: 'label' }, label), prefInput(name, type), flagNote(name) || h('span', { class: 'help' }, help))),
    h('label', { class: 'field' }, h('span', { class: 'label' }, 'Extra request fields ', h('span', { class: 'optional' }, 'JSON object')), extra,
      flagNote('llm_extra_body') || h('span', { class: 'help' }, 'Merged into every request, e.g. {"options": {"num_ctx": 16384}} for Ollama.')),
    h('div', { class: 'field' },
      h('label', { class: 'label', for: 'prefs-llm_api_key' }, 'API key ', h('span', { class: 'optional', id: 'prefs-key-state' }, data.llm_api_key_set ? 'set' : 'not set')),
      key, flagNote('llm_api_key') || h('span', { class: 'help' }, 'Never shown again once saved, and never in a backup or export.'),
      data.llm_api_key_set && !prefFixed('llm_api_key') ? h('button', { type: 'button', class: 'btn small ghost', id: 'prefs-clear-key', onclick: clearKey }, 'Clear key') : null),
    h('div', { id: 'prefs-error', class: 'form-error' }),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn primary', id: 'prefs-save' }, 'Save'),
      h('button', { type: 'button', class: 'btn', id: 'prefs-test', onclick: testConnection }, 'Test connection')),
    h('div', { id: 'prefs-test-result', class: 'prefs-test-result', 'aria-live': 'polite' }),
  );
  setChildren(
    view,
    h('nav', { class: 'crumbs' }, h('a', { href: '#', class: 'back' }, '← Your stories')),
    h('header', { class: 'detail-head' }, h('div', {},
      h('h1', { class: 'detail-title', id: 'prefs-title' }, 'Settings'),
      h('p', { class: 'detail-meta' }, 'Which generator writes your stories, and with which model. A change applies to the next chapter written, without a restart.'))),
    form,
  );
}

/** A number field's value: null when empty, else the number (or the text, for the server to refuse). */
function numberOf(input) {
  const text = input.value.trim();
  if (!text) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

/** What the form says, for the fields no flag fixes. */
function preferencesBody() {
  const body = {};
  const generator = $('#prefs-generator');
  if (!generator.disabled) body.generator = generator.value;
  for (const [name, , type] of PREF_FIELDS) {
    const input = $(`#prefs-${name}`);
    if (input.disabled) continue;
    body[name] = type === 'number' ? numberOf(input) : input.value.trim() || null;
  }
  const extra = $('#prefs-llm_extra_body');
  if (!extra.disabled) {
    const text = extra.value.trim();
    try {
      body.llm_extra_body = text ? JSON.parse(text) : null;
    } catch {
      body.llm_extra_body = text; // the server names the field in its refusal
    }
  }
  const key = $('#prefs-llm_api_key');
  if (!key.disabled && key.value) body.llm_api_key = key.value;
  return body;
}

async function savePreferences(ev) {
  ev.preventDefault();
  const error = $('#prefs-error');
  error.replaceChildren();
  try {
    prefs.data = await api('PUT', '/api/settings', preferencesBody());
    prefs.built = false;
    renderPreferences();
    state.healthAt = 0;
    toast('Settings saved: the next chapter is written with them.');
  } catch (err) {
    setChildren(error, errorView(err, 'Saving the settings'));
  }
}

async function clearKey() {
  try {
    prefs.data = await api('PUT', '/api/settings', { llm_api_key: '' });
    prefs.built = false;
    renderPreferences();
    toast('API key cleared.');
  } catch (err) {
    setChildren($('#prefs-error'), errorView(err, 'Clearing the key'));
  }
}

async function testConnection() {
  const result = $('#prefs-test-result');
  const button = $('#prefs-test');
  const body = {};
  const generator = $('#prefs-generator');
  if (generator.value !== 'command') body.generator = generator.value;
  for (const name of ['llm_url', 'llm_model']) {
    const value = $(`#prefs-${name}`).value.trim();
    if (value) body[name] = value;
  }
  const key = $('#prefs-llm_api_key');
  if (key.value) body.llm_api_key = key.value;
  button.disabled = true;
  setChildren(result, h('p', { class: 'help' }, 'Testing…'));
  try {
    const report = await api('POST', '/api/settings/test', body);
    if (report.ok) {
      setChildren(result, h('p', { class: 'test-ok', role: 'status' },
        `Connected in ${report.latency_ms} ms. Models: ${report.models.join(', ') || 'none listed'}.`));
    } else {
      setChildren(result, h('p', { class: 'test-failed', role: 'alert' }, `Connection failed: ${report.error}`));
    }
  } catch (err) {
    setChildren(result, errorView(err, 'Testing the connection'));
  } finally {
    button.disabled = false;
  }
}
