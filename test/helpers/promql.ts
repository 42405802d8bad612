/**
 * Just enough PromQL reading for the tests of the shipped dashboard and rules:
 * which series an expression selects, and what a function is applied to. It is
 * not a parser; it relies on the expressions naming every metric with a `{...}`
 * selector or a bare name, as ours do.
 */

const KEYWORDS: ReadonlySet<string> = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'atan2',
]);

/** The expression without comments, string literals, label matchers and durations. */
function stripLiterals(expr: string): string {
  return expr
    .replace(/#[^\n]*/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
}

/** Names of the series an expression selects: metric names and recording rule names. */
export function findSeriesNames(expr: string): string[] {
  const names = new Set<string>();
  const identifier = /(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?/g;
  for (const match of stripLiterals(expr).matchAll(identifier)) {
    const [, name, call] = match;
    if (name && !call && !KEYWORDS.has(name.toLowerCase())) {
      names.add(name);
    }
  }

  return [...names];
}

/** One function call found in an expression. */
export interface FunctionCall {
  /** The function's name, e.g. `rate`. */
  name: string;
  /** The text between its parentheses. */
  argument: string;
}

/** Every call of one of the named functions, in order of appearance. */
export function findCalls(expr: string, functionNames: readonly string[]): FunctionCall[] {
  const calls: FunctionCall[] = [];
  const pattern = new RegExp(`(?<![\\w:])(${functionNames.join('|')})\\s*\\(`, 'g');
  for (const match of expr.matchAll(pattern)) {
    const start = match.index + match[0].length;
    let depth = 1;
    let end = start;
    while (end < expr.length && depth > 0) {
      if (expr[end] === '(') depth += 1;
      if (expr[end] === ')') depth -= 1;
      end += 1;
    }
    calls.push({ name: match[1] ?? '', argument: expr.slice(start, end - 1) });
  }

  return calls;
}

/** One label matcher of a selector, e.g. `task_id=~"$task_id"`. */
export interface LabelMatcher {
  /** `=`, `!=`, `=~` or `!~`. */
  operator: string;
  /** The value, without its quotes. */
  value: string;
}

/** One `name{...}` selector found in an expression. */
export interface Selector {
  /** The metric or recording rule name. */
  name: string;
  /** Its label matchers, by label name. */
  matchers: Map<string, LabelMatcher>;
}

/** Every `name{...}` selector of an expression. */
export function findSelectors(expr: string): Selector[] {
  const selectors: Selector[] = [];
  const selector = /(?<![\w:])([A-Za-z_:][\w:]*)\s*\{([^}]*)\}/g;
  const matcher = /(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;
  for (const [, name = '', body = ''] of expr.replace(/#[^\n]*/g, ' ').matchAll(selector)) {
    const matchers = new Map<string, LabelMatcher>();
    for (const [, label = '', operator = '', value = ''] of body.matchAll(matcher)) {
      matchers.set(label, { operator, value });
    }
    selectors.push({ name, matchers });
  }

  return selectors;
}
