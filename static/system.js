// storyflow's page: the System view (#system): health,
// metrics, backups and maintenance (health check, orphan dry-run), kept apart from
// the writer's stories.
'use strict';

function stat(label, value, options = {}) {
  return h(
    'div',
    { class: `stat${options.tone ? ` tone-${options.tone}` : ''}`, dataset: options.name ? { stat: options.name } : {} },
    h('dt', {}, label),
    h('dd', { title: options.title || null }, h('span', { class: 'stat-value' }, value), options.sub ? h('span', { class: 'stat-sub' }, options.sub) : null),
  );
}

function degradedReason(health) {
  if (health.hint) return health.hint;
  if (health.disk_full_since) return `disk full since ${ago(health.disk_full_since)}: writes wait until space is freed`;
  if (health.stuck_runs) return 'runs are stuck';
  return 'the last sweep found problems';
}

function renderHealth() {
  const health = state.health;
  const dl = $('#health-stats');
  if (!health) {
    dl.replaceChildren(stat('Status', '…'));
    return;
  }
  const sweep = health.last_sweep;
  const orphans = state.orphans ? state.orphans.count : null;
  // A live count in GET /api/health: no full integrity check to poll.
  const stuck = typeof health.stuck_runs === 'number' ? health.stuck_runs : null;
  const runs = health.runs || {};
  const active = (runs.running || 0) + (runs.pending || 0);
  const { uptime_s: _uptime, ...lasting } = health;
  const sig = JSON.stringify([lasting, orphans, sweep && ago(sweep.started_at)]);
  if (dl.sig === sig) return;
  dl.sig = sig;
  dl.replaceChildren(
    stat('Status', health.status === 'ok' ? 'Healthy' : 'Degraded', {
      name: 'status',
      tone: health.status === 'ok' ? 'good' : 'warn',
      sub: health.status === 'ok' ? `${health.generator && health.generator.name} · ${plural(health.workers, 'worker')}` : degradedReason(health),
    }),
    stat('Last sweep', sweep ? timeAgo(sweep.started_at) : 'not yet', {
      name: 'last-sweep',
      sub: sweep ? `${sweep.duration_ms} ms` : 'runs at start',
    }),
    stat('Orphaned runs', orphans === null ? '—' : orphans.toLocaleString(), {
      name: 'orphans',
      tone: orphans ? 'bad' : null,
      sub: orphans ? 'try the orphan dry-run' : 'none',
    }),
    stat('Stuck runs', stuck === null ? '—' : stuck.toLocaleString(), {
      name: 'stuck',
      tone: stuck ? 'warn' : null,
      sub: stuck === null ? 'not reported' : stuck ? 'running with an expired lease' : 'none',
    }),
    stat('Database', bytes(health.database && health.database.size_bytes), {
      name: 'database',
      title: health.database ? health.database.path : null,
      sub: health.database ? `schema ${health.database.schema_version}` : null,
    }),
    stat('Active runs', active.toLocaleString(), {
      name: 'active',
      sub: `${(runs.completed || 0).toLocaleString()} completed · ${(runs.failed || 0).toLocaleString()} failed`,
    }),
    generatorStat(health.generator),
  );
}

/** Whether the generator answers: GET /api/health's `generator` object. */
function generatorStat(generator) {
  if (!generator || typeof generator !== 'object') return null;
  const checked = generator.checked_at ? `checked ${timeAgo(generator.checked_at)}` : 'not checked yet';
  return stat('Generator', generator.ok ? 'Reachable' : 'Unreachable', {
    name: 'generator',
    tone: generator.ok && !generator.error ? 'good' : 'warn',
    title: generator.error || null,
    sub: generator.error ? `${generator.name} · ${generator.error}` : `${generator.name} · ${checked}`,
  });
}

function renderMetrics() {
  const m = state.metrics;
  const dl = $('#metrics-stats');
  if (!m) {
    dl.replaceChildren(stat('Cache hit rate', '…'));
    return;
  }
  const cache = m.chapter_count_cache || {};
  const progress = m.progress_updates || { skipped: {} };
  const skipped = progress.skipped || {};
  const skippedTotal = (skipped.run_failed || 0) + (skipped.run_finished || 0) + (skipped.stale || 0);
  const sig = JSON.stringify(m);
  if (dl.sig === sig) return;
  dl.sig = sig;
  dl.replaceChildren(
    stat('Cache hit rate', `${Math.round((cache.hit_rate || 0) * 100)}%`, {
      name: 'hit-rate',
      sub: `${plural(cache.hits || 0, 'hit')} · ${plural(cache.misses || 0, 'miss', 'misses')}`,
      title: `chapter-count cache: ${cache.entries || 0} entries, ${cache.evictions || 0} evicted, ${cache.expired || 0} expired`,
    }),
    stat('Progress updates', `${(progress.applied || 0).toLocaleString()} applied`, {
      name: 'progress',
      sub: `${skippedTotal.toLocaleString()} skipped`,
      title: `skipped: ${skipped.run_failed || 0} for failed runs, ${skipped.run_finished || 0} for finished runs, ${skipped.stale || 0} stale`,
    }),
    stat('SQL statements', (m.sql_statements || 0).toLocaleString(), {
      name: 'sql',
      sub: `${(m.http_requests || 0).toLocaleString()} HTTP requests`,
    }),
    stat('Orphans detected', (m.orphans_detected || 0).toLocaleString(), {
      name: 'orphans-detected',
      tone: m.orphans_detected ? 'warn' : null,
      sub: `${plural(m.sweeps || 0, 'sweep')} · ${(m.runs_recovered || 0).toLocaleString()} recovered`,
    }),
  );
}

// ----------------------------------------------------------------- backups
//
// "last backup 3 h ago" and, when backups are off or the last attempt
// failed, a warning in words. A failure counts only while no backup has
// succeeded since it (last_error_at after last_backup_at): the server
// keeps the last error after a later success.

function renderBackups() {
  const line = $('#backup-line');
  const warning = $('#backup-warning');
  const data = state.backups;
  if (!data) return;
  const status = data.status || {};
  const copies = (data.backups || []).length;
  const last = status.last_backup_at || (data.backups && data.backups[0] && data.backups[0].created_at) || null;
  const failing = Boolean(status.last_error) && (!last || (parseTime(status.last_error_at) || 0) >= (parseTime(last) || 0));
  const sig = JSON.stringify([data, ago(last), ago(status.last_error_at)]);
  if (line.sig === sig) return;
  line.sig = sig;
  line.replaceChildren(
    last ? timeAgo(last, 'last backup') : 'no backup yet',
    status.enabled ? ` · every ${status.interval_h} h, keeping the newest ${status.keep}` : '',
    ` · ${plural(copies, 'copy', 'copies')}`,
    status.dir ? [' in ', h('code', {}, status.dir)] : null,
  );
  let message = null;
  if (!status.enabled) {
    message = 'Backups are off (serve --backup-interval-h 0): nothing copies the database on a timer. Repairs and purges still write one first.';
  } else if (failing) {
    message = `The last backup failed ${ago(status.last_error_at)}: ${status.last_error}. Serving goes on; check the backup directory's space and permissions.`;
  }
  warning.textContent = message || '';
  warning.hidden = !message;
  warning.dataset.kind = !status.enabled ? 'off' : failing ? 'failing' : '';
}

// ------------------------------------------------------------- maintenance

async function runHealthCheck() {
  const button = $('#btn-health-check');
  button.disabled = true;
  showMaintenance(h('p', { class: 'muted' }, 'Checking the database…'), 'Health check');
  try {
    const report = await api('GET', '/api/maintenance/health');
    showMaintenance(healthReportView(report), 'Health check', 'health');
    state.healthAt = 0; // the summary catches up with what the check found
    refreshNow();
  } catch (err) {
    showMaintenance(errorView(err, 'The health check failed'), 'Health check', 'health');
  } finally {
    button.disabled = false;
  }
}

function healthReportView(report) {
  const problems = report.problems || [];
  const head = report.healthy
    ? h('p', { class: 'verdict good' }, 'Healthy: no problems found.')
    : h('p', { class: 'verdict bad' }, `${plural(problems.length, 'problem')} found.`);
  const facts = h(
    'p',
    { class: 'muted' },
    `Integrity ${report.integrity_ok ? 'ok' : 'FAILED'} · schema version ${report.schema_version}`,
  );
  const list = problems.length
    ? h(
        'ul',
        { class: 'problems' },
        problems.map((p) =>
          h(
            'li',
            { dataset: { code: p.code } },
            h('code', { class: 'error-code' }, p.code),
            ' ',
            h('span', {}, p.message),
            h('span', { class: 'muted' }, p.fixable ? ' · fixable' : ' · needs you'),
          ),
        ),
      )
    : null;
  const fixable = problems.some((p) => p.fixable);
  const next = fixable
    ? h('p', { class: 'help' }, 'To repair what is safe to repair, run ', h('code', {}, 'storyflow health-check --fix'), ' (or POST /api/maintenance/health?fix=true).')
    : null;
  return [head, facts, list, next];
}

async function runOrphanDryRun() {
  const button = $('#btn-orphan-dry-run');
  button.disabled = true;
  showMaintenance(h('p', { class: 'muted' }, 'Looking for orphans…'), 'Orphan dry-run');
  try {
    const report = await api('POST', '/api/maintenance/fix-orphans?dry_run=true');
    showMaintenance(orphanReportView(report), 'Orphan dry-run', 'orphans');
  } catch (err) {
    showMaintenance(errorView(err, 'The orphan dry-run failed'), 'Orphan dry-run', 'orphans');
  } finally {
    button.disabled = false;
  }
}

function orphanReportView(report) {
  const c = report.counts || {};
  const none = (c.runs || 0) + (c.chapters || 0) + (c.events || 0) === 0;
  const runs = report.orphaned_runs || [];
  return [
    h('p', { class: `verdict ${none ? 'good' : 'bad'}` }, none ? 'No orphans: every run, chapter and event belongs to a story.' : 'Orphans found.'),
    h('p', { class: 'summary' }, report.summary),
    h(
      'dl',
      { class: 'stats compact' },
      stat('Runs', (c.runs || 0).toLocaleString(), { tone: c.runs ? 'bad' : null }),
      stat('Active', (c.active_runs || 0).toLocaleString()),
      stat('Chapters', (c.chapters || 0).toLocaleString()),
      stat('Events', (c.events || 0).toLocaleString()),
    ),
    runs.length
      ? h(
          'ul',
          { class: 'problems' },
          runs.map((r) =>
            h(
              'li',
              {},
              h('a', { href: `#run/${encodeURIComponent(r.id)}`, class: 'mono' }, shortId(r.id)),
              ` ${r.status} · points at missing story `,
              h('code', {}, shortId(r.story_id)),
              r.error_code ? [' · ', h('code', { class: 'error-code' }, r.error_code)] : null,
              ' · created ',
              timeAgo(r.created_at),
            ),
          ),
        )
      : null,
    none ? null : h('p', { class: 'help' }, 'Nothing was changed. To remove them, run ', h('code', {}, 'storyflow fix-orphans'), '.'),
  ];
}

function showMaintenance(content, title, kind) {
  const box = $('#maintenance-result');
  box.dataset.kind = kind || 'working';
  box.replaceChildren(
    h(
      'div',
      { class: 'card-head' },
      h('h2', {}, title),
      h('span', { class: 'card-note' }, kind ? `at ${new Date().toLocaleTimeString()}` : ''),
      h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Close', text: '×', onclick: () => (box.hidden = true) }),
    ),
    h('div', { class: 'maintenance-body' }, content),
  );
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

