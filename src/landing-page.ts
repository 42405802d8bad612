import type { TaskRecord } from './task-state.js';

/** What the landing page shows. */
export interface LandingPageData {
  version: string;
  /** Tracked tasks, in tracking order. */
  tasks: TaskRecord[];
  /** Rows shown at most; a note says how many more there are. */
  maxRows?: number;
  /** Current time, in Unix milliseconds. */
  nowMs: number;
  /** URL of the task registration endpoint as the visitor reached it, for the example command. */
  registrationUrl?: string;
}

/** Renders the landing page. Every value that reaches the HTML is escaped. */
export function renderLandingPage(data: LandingPageData): string {
  const maxRows = data.maxRows ?? 1000;
  const rows = data.tasks.slice(0, maxRows).map((record) => renderRow(record, data.nowMs));
  const more =
    data.tasks.length > maxRows
      ? `<p>${data.tasks.length - maxRows} more tasks are not shown; see <a href="/metrics">/metrics</a>.</p>`
      : '';

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>DriveQuant task exporter</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 0.25rem 0.75rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
progress { width: 8rem; }
.error { color: #b00; }
</style>
</head>
<body>
<h1>DriveQuant task exporter</h1>
<p>Version ${escapeHtml(data.version)}.
<a href="/metrics">Metrics</a> &middot; <a href="/-/healthy">Health</a> &middot; <a href="/-/ready">Readiness</a></p>
<h2>Tracked tasks (${data.tasks.length})</h2>
<table>
<thead><tr><th>Task</th><th>Source</th><th>Type</th><th>Status</th><th>Items</th><th>Remaining</th><th>Progress</th><th>Last good poll</th><th>Last error</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
${more}
${renderRegistrationHelp(data.registrationUrl)}
</body>
</html>
`;
}

function renderRow(record: TaskRecord, nowMs: number): string {
  const snapshot = record.snapshot;
  const status = record.notFound ? 'NOT_FOUND' : (snapshot?.status ?? 'NOT_POLLED');
  const done = snapshot === undefined ? undefined : snapshot.items - snapshot.remainingItems;
  const progress =
    snapshot === undefined || snapshot.items === 0
      ? ''
      : `<progress max="${snapshot.items}" value="${done}"></progress> ${Math.floor(((done ?? 0) / snapshot.items) * 100)}%`;
  const lastGood =
    record.lastSuccessMs === undefined
      ? 'never'
      : `${Math.round((nowMs - record.lastSuccessMs) / 1000)}s ago`;
  const lastError =
    record.lastError === undefined
      ? ''
      : `<span class="error">${escapeHtml(record.lastError.reason)}: ${escapeHtml(record.lastError.message)}</span>`;

  return [
    '<tr>',
    `<td><code>${escapeHtml(record.taskId)}</code></td>`,
    `<td>${escapeHtml(describeSources(record))}</td>`,
    `<td>${escapeHtml(snapshot?.taskType ?? '')}</td>`,
    `<td>${escapeHtml(status)}</td>`,
    `<td class="num">${snapshot?.items ?? ''}</td>`,
    `<td class="num">${snapshot?.remainingItems ?? ''}</td>`,
    `<td>${progress}</td>`,
    `<td>${escapeHtml(lastGood)}</td>`,
    `<td>${lastError}</td>`,
    '</tr>',
  ].join('');
}

const SOURCE_ORDER = ['config', 'file', 'api'];

function describeSources(record: TaskRecord): string {
  return [...record.sources]
    .sort((a, b) => SOURCE_ORDER.indexOf(a) - SOURCE_ORDER.indexOf(b))
    .join(', ');
}

// The token is never on the page: the command shows where it goes, not what it is.
function renderRegistrationHelp(url: string | undefined): string {
  if (url === undefined) {
    return '';
  }

  const command = `curl -X POST -H 'Authorization: Bearer <api.token>' -H 'Content-Type: application/json' -d '{"taskId":"<task id>"}' ${url}`;

  return `<h2>Add a task</h2>
<p>Register a task id returned by a DriveQuant retry (needs <code>api.token</code> in the configuration):</p>
<pre><code>${escapeHtml(command)}</code></pre>
<p>Or start a retry and register it in one go: <code>drivequant-task-exporter retry trips --config.file=PATH --register ${escapeHtml(url.replace(/\/api\/v1\/tasks$/, ''))}</code>.
The tracked tasks are also listed as JSON at <a href="/api/v1/tasks">/api/v1/tasks</a>.</p>`;
}

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
