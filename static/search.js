// storyflow's page: the search box on the stories view. Loaded after
// core.js and before app.js, it shares their global scope.
//
// - The hits come from GET /api/search; each snippet marks matches between
//   `[` and `]`, which become <mark> elements built as DOM nodes (the text
//   is never parsed as HTML).
// - A hit opens the reader (`#story/ID`) and scrolls to `#chapter-N` once
//   the story view has drawn that chapter; a bible entry's hit (`kind:
//   "bible"`, no chapter) scrolls to the story's bible (`#bible`).
'use strict';

/** How long a hit waits for the reader to draw its chapter, in ms. */
const SEARCH_SCROLL_WAIT_MS = 5000;

/** The snippet's text as nodes: text, and each `[match]` as a <mark>. */
function snippetNodes(snippet) {
  const nodes = [];
  const text = String(snippet || '');
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('[', at);
    const close = open < 0 ? -1 : text.indexOf(']', open + 1);
    if (open < 0 || close < 0) {
      nodes.push(text.slice(at));
      break;
    }
    if (open > at) nodes.push(text.slice(at, open));
    nodes.push(h('mark', {}, text.slice(open + 1, close)));
    at = close + 1;
  }
  return nodes;
}

/**
 * Scrolls to chapter `number` of story `id` once the reader shows it (to the
 * story's bible when `number` is null).
 */
function scrollToChapterWhenShown(id, number) {
  const until = Date.now() + SEARCH_SCROLL_WAIT_MS;
  const target = number === null || number === undefined ? 'bible' : `chapter-${number}`;
  const tryScroll = () => {
    const shown = typeof state !== 'undefined' && state.story && state.story.id === id;
    const el = shown ? document.getElementById(target) : null;
    if (el) {
      el.scrollIntoView({ behavior: 'smooth', block: 'start' });
      return;
    }
    if (Date.now() < until) setTimeout(tryScroll, 100);
  };
  tryScroll();
}

function searchHitView(hit) {
  const href = `#story/${encodeURIComponent(hit.story_id)}`;
  const open = (event) => {
    event.preventDefault();
    if (location.hash !== href) location.hash = href;
    scrollToChapterWhenShown(hit.story_id, hit.chapter);
  };
  return h(
    'li',
    { class: 'search-hit' },
    h('a', { class: 'search-hit-link', href, onclick: open }, hit.kind === 'bible' ? `${hit.story_title} · Bible: ${hit.title}` : `${hit.story_title} · Chapter ${hit.chapter}: ${hit.title}`),
    h('p', { class: 'search-snippet' }, snippetNodes(hit.snippet)),
  );
}

async function runSearch(event) {
  event.preventDefault();
  const query = $('#search-input').value.trim();
  const results = $('#search-results');
  const status = $('#search-status');
  if (!query) {
    setChildren(results);
    status.textContent = '';
    return;
  }
  status.textContent = 'Searching…';
  try {
    const data = await api('GET', `/api/search?q=${encodeURIComponent(query)}`);
    const hits = (data && data.hits) || [];
    status.textContent = hits.length ? `${plural(hits.length, 'match', 'matches')} found` : 'No chapter or bible entry holds all those words.';
    setChildren(results, hits.map(searchHitView));
  } catch (err) {
    setChildren(results);
    status.textContent = `Search failed: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
  }
}

$('#search-form').addEventListener('submit', runSearch);
