/** One sample line of the Prometheus text format. */
export interface Sample {
  /** Metric name, with its `_bucket`/`_sum`/`_count` suffix when it has one. */
  name: string;
  /** Label values by label name, unescaped. */
  labels: Record<string, string>;
  /** The value, `NaN` and the infinities included. */
  value: number;
}

/** A whole scrape: every sample, and the TYPE and HELP lines by family name. */
export interface Scrape {
  samples: Sample[];
  types: Map<string, string>;
  helps: Map<string, string>;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;

/** Parses the Prometheus text exposition format; throws on a line it cannot read. */
export function parseScrape(text: string): Scrape {
  const scrape: Scrape = { samples: [], types: new Map(), helps: new Map() };
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      continue;
    }
    const comment = /^# (TYPE|HELP) (\S+) ?(.*)$/.exec(line);
    if (comment !== null) {
      const [, kind, name = '', rest = ''] = comment;
      (kind === 'TYPE' ? scrape.types : scrape.helps).set(name, rest);
      continue;
    }
    if (line.startsWith('#')) {
      continue;
    }

    const match = SAMPLE_LINE.exec(line);
    if (match === null) {
      throw new Error(`not a sample line: ${line}`);
    }
    const [, name = '', labelText = '', valueText = ''] = match;
    scrape.samples.push({
      name,
      labels: parseLabels(labelText, line),
      value: parseValue(valueText),
    });
  }

  return scrape;
}

/** The samples of one metric name whose labels include every given label. */
export function findSamples(
  scrape: Scrape,
  name: string,
  labels: Record<string, string> = {},
): Sample[] {
  return scrape.samples.filter(
    (sample) =>
      sample.name === name &&
      Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
}

/** The value of the one sample that matches, or undefined when none does; throws on several. */
export function sampleValue(
  scrape: Scrape,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = findSamples(scrape, name, labels);
  if (found.length > 1) {
    throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  }

  return found[0]?.value;
}

/** Fetches `/metrics` and parses it. */
export async function scrapeMetrics(baseUrl: string): Promise<Scrape> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (response.status !== 200) {
    throw new Error(`/metrics answered ${response.status}`);
  }

  return parseScrape(await response.text());
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL_PAIR.lastIndex = 0;
  let consumed = 0;
  for (let match = LABEL_PAIR.exec(text); match !== null; match = LABEL_PAIR.exec(text)) {
    const [whole, key = '', value = ''] = match;
    labels[key] = value.replace(/\\(.)/g, (_, char: string) => (char === 'n' ? '\n' : char));
    consumed += whole.length;
  }
  if (consumed !== text.length) {
    throw new Error(`cannot read the labels of: ${line}`);
  }

  return labels;
}

function parseValue(text: string): number {
  // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client
  // writes `Nan`).
  if (/^[+-]?inf(inity)?$/i.test(text)) {
    return text.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (/^nan$/i.test(text)) {
    return Number.NaN;
  }

  const value = Number(text);
  if (Number.isNaN(value) || text.trim() === '') {
    throw new Error(`not a sample value: ${text}`);
  }

  return value;
}
