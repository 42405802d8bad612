import { describe, expect, it } from 'vitest';
import { parseTaskFile } from '../../src/task-files.js';

describe('plain-text task files', () => {
  it('reads one id per line, skipping comments and blank lines', () => {
    const text =
      '# retries of March\n\n6753030831fe9826412bac5c\n  abc-1  # trailing note\r\nabc-1\n';

    const parsed = parseTaskFile('/tasks/a.txt', text);

    expect(parsed).toEqual({
      ids: ['6753030831fe9826412bac5c', 'abc-1'],
      problems: [],
      unusable: false,
    });
  });

  it('reports a bad line with its number and keeps the rest', () => {
    const parsed = parseTaskFile('/tasks/a.txt', 'good-1\nnot an id\ngood-2\n../etc\n');

    expect(parsed.ids).toEqual(['good-1', 'good-2']);
    expect(parsed.problems).toEqual([
      {
        path: '/tasks/a.txt',
        line: 2,
        message: '"not an id" is not a task id (1 to 64 of A-Z a-z 0-9 _ -)',
      },
      {
        path: '/tasks/a.txt',
        line: 4,
        message: '"../etc" is not a task id (1 to 64 of A-Z a-z 0-9 _ -)',
      },
    ]);
  });

  it('reads a file of any other extension as plain text', () => {
    expect(parseTaskFile('/tasks/list', 'abc\n').ids).toEqual(['abc']);
  });
});

describe('YAML task files', () => {
  it('reads a list of ids, keeping an id of digits only exactly as written', () => {
    const parsed = parseTaskFile('/tasks/a.yaml', '- 675303083100000000000000\n- abc # note\n');

    expect(parsed).toEqual({
      ids: ['675303083100000000000000', 'abc'],
      problems: [],
      unusable: false,
    });
  });

  it('reads tasks: and a list, in .yml and .json files too', () => {
    expect(parseTaskFile('/tasks/a.yml', 'tasks:\n  - abc\n  - def\n').ids).toEqual(['abc', 'def']);
    expect(parseTaskFile('/tasks/a.json', '{"tasks": ["abc"]}').ids).toEqual(['abc']);
  });

  it('reports bad entries and unknown keys with their lines and keeps the rest', () => {
    const text = 'tasks:\n  - good-1\n  - {id: x}\n  - bad id\n  - good-2\nextra: 1\n';

    const parsed = parseTaskFile('/tasks/a.yaml', text);

    expect(parsed.ids).toEqual(['good-1', 'good-2']);
    expect(parsed.problems).toEqual([
      { path: '/tasks/a.yaml', line: 6, message: 'unknown key "extra"; expected tasks:' },
      { path: '/tasks/a.yaml', line: 3, message: 'not a task id (a list or map)' },
      {
        path: '/tasks/a.yaml',
        line: 4,
        message: '"bad id" is not a task id (1 to 64 of A-Z a-z 0-9 _ -)',
      },
    ]);
  });

  it('reads an empty file and an empty tasks: as no tasks', () => {
    expect(parseTaskFile('/tasks/a.yaml', '')).toEqual({ ids: [], problems: [], unusable: false });
    expect(parseTaskFile('/tasks/a.yaml', 'tasks:\n').ids).toEqual([]);
  });

  it('says a file with a syntax error is unusable, with the line of the error', () => {
    const parsed = parseTaskFile('/tasks/a.yaml', 'tasks: [abc]\ntasks: [def]\n');

    expect(parsed.unusable).toBe(true);
    expect(parsed.ids).toEqual([]);
    expect(parsed.problems[0]).toMatchObject({ path: '/tasks/a.yaml', line: 2 });
    expect(parsed.problems[0]?.message).toMatch(/^YAML syntax: /);
  });

  it('reports a document that is neither a list nor tasks:', () => {
    const parsed = parseTaskFile('/tasks/a.yaml', 'just-a-string\n');

    expect(parsed.problems).toEqual([
      {
        path: '/tasks/a.yaml',
        line: 1,
        message: 'expected a list of task ids, or tasks: and a list',
      },
    ]);
  });
});
