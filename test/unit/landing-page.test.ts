import { beforeEach, describe, expect, it } from 'vitest';
import { escapeHtml, renderLandingPage } from '../../src/landing-page.js';
import { TaskStore } from '../../src/task-state.js';

const NOW_MS = Date.UTC(2025, 0, 1, 12, 0, 0);

let store: TaskStore;

beforeEach(() => {
  store = new TaskStore({ maxTasks: 100, notFoundLimit: 1, now: () => NOW_MS - 30_000 });
});

describe('escapeHtml', () => {
  it('escapes the five characters that matter in content and attributes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });
});

describe('renderLandingPage', () => {
  it('escapes every value that reaches the page', () => {
    store.track('<img src=x onerror=alert(1)>', 'api');
    store.recordFailure(
      '<img src=x onerror=alert(1)>',
      'invalid"reason',
      '<script>alert("key")</script> & more',
    );

    const html = renderLandingPage({ version: '1.0.0"><b>', tasks: store.list(), nowMs: NOW_MS });

    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('"><b>');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain(
      'invalid&quot;reason: &lt;script&gt;alert(&quot;key&quot;)&lt;/script&gt; &amp; more',
    );
    expect(html).toContain('Version 1.0.0&quot;&gt;&lt;b&gt;.');
  });

  it('shows each task with its type, status, items and progress', () => {
    store.track('6753030831fe9826412bac5c', 'config');
    store.recordSuccess('6753030831fe9826412bac5c', {
      taskId: '6753030831fe9826412bac5c',
      taskType: 'PUSH_FAILED_TRIPS',
      status: 'IN_PROGRESS',
      items: 321,
      remainingItems: 12,
      createdSeconds: 1733753657.574,
    });

    const html = renderLandingPage({ version: '1.0.0', tasks: store.list(), nowMs: NOW_MS });

    expect(html).toContain(
      '<tr><td><code>6753030831fe9826412bac5c</code></td><td>config</td><td>PUSH_FAILED_TRIPS</td><td>IN_PROGRESS</td>' +
        '<td class="num">321</td><td class="num">12</td>' +
        '<td><progress max="321" value="309"></progress> 96%</td><td>30s ago</td><td></td></tr>',
    );
    expect(html).toContain('<h2>Tracked tasks (1)</h2>');
    expect(html).toContain('<a href="/metrics">Metrics</a>');
  });

  it('says NOT_POLLED before the first answer and NOT_FOUND once given up', () => {
    store.track('waiting', 'config');
    store.track('missing', 'config');
    store.recordFailure('missing', 'not_found', 'DriveQuant answered HTTP 404');

    const html = renderLandingPage({ version: '1.0.0', tasks: store.list(), nowMs: NOW_MS });

    expect(html).toMatch(
      /<code>waiting<\/code><\/td><td>config<\/td><td><\/td><td>NOT_POLLED<\/td>/,
    );
    expect(html).toMatch(
      /<code>missing<\/code><\/td><td>config<\/td><td><\/td><td>NOT_FOUND<\/td>/,
    );
    expect(html).toContain('<td>never</td>');
  });

  it('shows every source of a task in a fixed order', () => {
    store.track('shared', 'api');
    store.track('shared', 'config');
    store.track('shared', 'file');

    const html = renderLandingPage({ version: '1.0.0', tasks: store.list(), nowMs: NOW_MS });

    expect(html).toContain('<th>Task</th><th>Source</th>');
    expect(html).toContain('<td><code>shared</code></td><td>config, file, api</td>');
  });

  it('gives the registration command for the URL it was reached on, escaped', () => {
    const html = renderLandingPage({
      version: '1.0.0',
      tasks: [],
      nowMs: NOW_MS,
      registrationUrl: 'http://exporter.example:9850/api/v1/tasks',
    });

    expect(html).toContain(
      `curl -X POST -H &#39;Authorization: Bearer &lt;api.token&gt;&#39; -H &#39;Content-Type: application/json&#39; -d &#39;{&quot;taskId&quot;:&quot;&lt;task id&gt;&quot;}&#39; http://exporter.example:9850/api/v1/tasks`,
    );
    expect(html).toContain('--register http://exporter.example:9850</code>');
  });

  it('shows at most maxRows tasks and says how many more there are', () => {
    for (const taskId of ['a', 'b', 'c', 'd', 'e']) {
      store.track(taskId, 'config');
    }

    const html = renderLandingPage({
      version: '1.0.0',
      tasks: store.list(),
      nowMs: NOW_MS,
      maxRows: 2,
    });

    expect(html.match(/<tr><td>/g)).toHaveLength(2);
    expect(html).toContain(
      '<p>3 more tasks are not shown; see <a href="/metrics">/metrics</a>.</p>',
    );
  });
});
