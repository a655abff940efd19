// storyflow's page (loaded last): the shared state, loading,
// polling, the views' router and titles, and start-up.
//
// Views (the address's hash): `#` the writer's stories (the first screen),
// `#system` health, metrics, backups and maintenance, `#preferences` the
// writer's settings (generator, model), `#trash` the deleted
// stories, `#story/ID` a story and its reader, `#run/ID` a run. `#/system` and `#/story/ID` are read the same.
//
// - A hidden tab does not poll; it catches up on visibilitychange.
// - The document title names the view ("The Salt Road · storyflow"); while
//   a run is being written it starts with that run's percentage, so a tab
//   in the background still shows the progress.
// - Leaving a view with an unsaved chapter edit asks first (see story.js).
'use strict';

const FAST_MS = 1000; // while a run is pending or running
const SLOW_MS = 10000; // otherwise: notices runs started from the shell
const HEALTH_MS = 5000;
const STORIES_MS = 15000;
const RUN_LIMIT = 100;
// The stories list is paged: the first screen asks for one page (drawing
// 500 cards took the first screen of a 10,000-story library past 600 ms),
// and "Show more stories" asks for one page more each time.
const STORY_PAGE = 50;

const state = {
  stories: [],
  storiesLoaded: false,
  storiesAt: 0,
  storiesDirty: false,
  storyLimit: STORY_PAGE, // how many stories the list shows; grows by a page
  storiesMore: false, // the last answer filled its page: there may be more
  refreshSoon: false,
  runs: [],
  runsLoaded: false,
  health: null,
  orphans: null,
  healthAt: 0,
  metrics: null,
  backups: null, // GET /api/backups, loaded on the System view only
  trash: null, // GET /api/trash's stories, loaded on the Trash view only
  filter: 'all',
  view: { name: 'stories' },
  story: null, // the story view: { id, story, runs, chapters, error }
  run: null, // the run view: { id, run, events, error, diagnosis }
  busy: new Set(), // keys of actions in flight, to disable their buttons
  flash: null, // id of a story to highlight once
  updatedAt: null,
};

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
  const data = await api('GET', `/api/stories?limit=${state.storyLimit}`);
  state.stories = data.stories || [];
  state.storiesMore = state.stories.length >= state.storyLimit;
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

async function loadBackups() {
  state.backups = await api('GET', '/api/backups');
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
  // The counters are only shown on the System view.
  if (state.view.name === 'system') jobs.push(loadMetrics(), loadBackups());
  if (state.view.name === 'trash') jobs.push(loadTrash());
  if (state.view.name === 'preferences') jobs.push(loadPreferences());
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
  if (state.view.name === 'stories') {
    renderStories();
    renderRuns();
  } else if (state.view.name === 'system') {
    renderHealth();
    renderMetrics();
    renderBackups();
  } else if (state.view.name === 'trash') {
    renderTrash();
  } else if (state.view.name === 'preferences') {
    renderPreferences();
  } else if (state.view.name === 'story') {
    renderStoryView();
  } else if (state.view.name === 'run') {
    renderRunView();
  }
  document.title = documentTitle();
  const refreshed = state.updatedAt ? `updated ${state.updatedAt.toLocaleTimeString()}` : 'connecting…';
  $('#footer-refresh').textContent = `${refreshed} · ${anyActive() ? 'live' : `every ${SLOW_MS / 1000} s`}`;
  if (state.health && state.health.version) $('#footer-version').textContent = `storyflow ${state.health.version}`;
}

/** What the view shows, then (while a run is written) how far it got. */
function documentTitle() {
  const title = `${viewTitle()} · storyflow`;
  const running = state.runs.find((r) => r.status === 'running');
  return running ? `${running.progress}% · ${title}` : title;
}

function viewTitle() {
  const view = state.view;
  if (view.name === 'system') return 'System';
  if (view.name === 'trash') return 'Trash';
  if (view.name === 'preferences') return 'Settings';
  if (view.name === 'story') {
    const story = (state.story && state.story.story) || storyById(view.id);
    return story ? story.title : 'Story';
  }
  if (view.name === 'run') {
    const story = state.run && state.run.story;
    return story && story.title ? `Run · ${story.title}` : 'Run';
  }
  return 'Stories';
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

// ------------------------------------------------------------------ router

const VIEWS = ['stories', 'system', 'trash', 'preferences', 'story', 'run'];

/** The view an address's hash names; anything unknown is the stories. */
function viewOf(hash) {
  const path = hash.replace(/^#\/?/, '');
  if (path === 'system' || path === 'trash' || path === 'preferences') return { name: path };
  const match = path.match(/^(story|run)\/([^/?#]{1,100})$/);
  return match ? { name: match[1], id: decodeURIComponent(match[2]) } : { name: 'stories' };
}

/** The hash of the view on screen: where a refused navigation returns. */
let shownHash = location.hash;

function route() {
  shownHash = location.hash;
  const view = viewOf(location.hash);
  state.view = view;
  state.story = view.name === 'story' ? { id: view.id } : null;
  state.run = view.name === 'run' ? { id: view.id } : null;
  for (const name of VIEWS) $(`#view-${name}`).hidden = name !== view.name;
  for (const link of document.querySelectorAll('.topnav-link')) {
    const current = link.id === `nav-${view.name}`;
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  $('#view-story').dataset.built = '';
  $('#view-run').dataset.built = '';
  forgetPreferences();
  // Whatever editors were open belonged to the view just left (the
  // navigation asked first, when they held changes).
  openEditors.clear();
  syncUnloadGuard();
  if (view.name !== 'stories') window.scrollTo(0, 0);
  render();
  refreshNow();
}

/**
 * Back, forward or a typed address: the hash has already changed. With an
 * unsaved edit, the edited view's address is put back while the writer
 * decides, and the navigation happens only if they choose to leave.
 */
function onHashChange() {
  if (location.hash === shownHash) return;
  if (!hasUnsavedEdits()) {
    route();
    return;
  }
  const target = location.hash;
  history.pushState(null, '', shownHash || location.pathname);
  leaveIfConfirmed(target);
}

/** In-page links: asked before the address changes at all. */
function onLinkClick(ev) {
  const link = ev.target instanceof Element ? ev.target.closest('a[href^="#"]') : null;
  if (!link || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const target = link.getAttribute('href');
  if (target === (shownHash || '#') || !hasUnsavedEdits()) return;
  ev.preventDefault();
  leaveIfConfirmed(target);
}

async function leaveIfConfirmed(target) {
  if (!(await confirmDiscard())) return;
  location.hash = target;
  // `#` and an empty hash are the same view: no hashchange to wait for.
  if (location.hash === shownHash) route();
}

// -------------------------------------------------------------------- init

function init() {
  $('#btn-new-story').addEventListener('click', () => openStoryForm(true));
  $('#story-cancel').addEventListener('click', () => {
    $('#story-form-error').replaceChildren();
    openStoryForm(false);
  });
  form().addEventListener('submit', submitStory);
  $('#btn-import-story').addEventListener('click', () => openImportForm(true));
  $('#btn-more-stories').addEventListener('click', () => {
    state.storyLimit += STORY_PAGE;
    state.storiesDirty = true;
    refreshNow();
  });
  $('#import-cancel').addEventListener('click', () => {
    resetImportForm();
    openImportForm(false);
  });
  $('#import-file').addEventListener('change', readManuscriptFile);
  importForm().addEventListener('submit', submitImport);
  $('#btn-health-check').addEventListener('click', runHealthCheck);
  $('#btn-orphan-dry-run').addEventListener('click', runOrphanDryRun);
  for (const button of document.querySelectorAll('.segmented .seg')) {
    button.addEventListener('click', () => {
      state.filter = button.dataset.filter;
      for (const b of document.querySelectorAll('.segmented .seg')) b.setAttribute('aria-pressed', String(b === button));
      renderRuns();
    });
  }
  window.addEventListener('hashchange', onHashChange);
  document.addEventListener('click', onLinkClick, true);
  route();
}

init();
