/**
 * PromQL checks for the alert rules and the Grafana dashboard: expressions are parsed with the Prometheus
 * project's own grammar (@prometheus-io/lezer-promql, the parser behind the Prometheus UI), and every metric and
 * label they use must exist in the service's registry (src/adapters/metrics/metrics.ts).
 */
import { parser } from '@prometheus-io/lezer-promql';
import { Registry } from 'prom-client';
import { createMetrics } from '../../../src/adapters/metrics/metrics.js';

/** Labels Prometheus attaches to every scraped series (ServiceMonitor target labels), not the app. */
export const TARGET_LABELS: ReadonlySet<string> = new Set([
  'namespace',
  'pod',
  'job',
  'instance',
  'service',
  'endpoint',
  'container',
]);

/** Series name → label names, as the service exposes them (histograms as _bucket/_sum/_count). */
export type SeriesCatalog = ReadonlyMap<string, ReadonlySet<string>>;

export async function seriesCatalog(): Promise<SeriesCatalog> {
  const registry = new Registry();
  createMetrics(registry, { version: 'test', commit: 'test' });
  const catalog = new Map<string, ReadonlySet<string>>();
  for (const m of await registry.getMetricsAsJSON()) {
    const metric = registry.getSingleMetric(m.name) as unknown as
      | { labelNames?: readonly string[] }
      | undefined;
    const labels = metric?.labelNames ?? [];
    if (!Array.isArray(labels)) throw new Error(`prom-client metric ${m.name} has no labelNames array`);
    const type = String(m.type);
    if (type === 'histogram') {
      catalog.set(`${m.name}_bucket`, new Set([...labels, 'le']));
      catalog.set(`${m.name}_sum`, new Set(labels));
      catalog.set(`${m.name}_count`, new Set(labels));
    } else if (type === 'summary') {
      catalog.set(m.name, new Set([...labels, 'quantile']));
      catalog.set(`${m.name}_sum`, new Set(labels));
      catalog.set(`${m.name}_count`, new Set(labels));
    } else {
      catalog.set(m.name, new Set(labels));
    }
  }
  return catalog;
}

export interface Analysis {
  /** Metric names of every vector selector, in order. */
  readonly metrics: readonly string[];
  readonly problems: readonly string[];
}

/** Grafana's template variables are not PromQL: give them values of the right shape before parsing. */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$\{[^}]+\}|\$[A-Za-z_]\w*/g, 'x');
}

/**
 * Parses `expr` and checks it against `catalog`: syntax errors, unknown metric names, label matchers a metric does
 * not have, and by/on/ignoring/without labels that none of the expression's metrics (nor Prometheus) provide.
 */
export function analyse(expr: string, catalog: SeriesCatalog): Analysis {
  const problems: string[] = [];
  const metrics: string[] = [];
  const grouping: string[] = [];
  const text = (from: number, to: number) => expr.slice(from, to);
  const tree = parser.parse(expr);
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        problems.push(`syntax error at ${node.from}: …${text(Math.max(0, node.from - 20), node.to + 20)}…`);
        return;
      }
      if (node.name === 'VectorSelector') {
        const id = node.node.getChild('Identifier');
        const name = id ? text(id.from, id.to) : undefined;
        if (!name) {
          problems.push(`a selector without a metric name: ${text(node.from, node.to)}`);
          return;
        }
        metrics.push(name);
        const known = catalog.get(name);
        if (!known) {
          problems.push(`unknown metric ${name}`);
          return;
        }
        const matchers = node.node.getChild('LabelMatchers');
        const labelNames = matchers ? matchers.getChildren('UnquotedLabelMatcher') : [];
        for (const m of labelNames) {
          const ln = m.getChild('LabelName');
          const label = ln ? text(ln.from, ln.to) : '';
          if (label === '__name__') problems.push(`${name}: select metrics by name, not __name__`);
          else if (!known.has(label) && !TARGET_LABELS.has(label))
            problems.push(`${name} has no label ${label}`);
        }
        if (matchers?.getChildren('QuotedLabelMatcher').length)
          problems.push(`${name}: quoted label matchers`);
      }
      if (node.name === 'GroupingLabels') {
        for (const ln of node.node.getChildren('LabelName')) grouping.push(text(ln.from, ln.to));
      }
    },
  });
  if (metrics.length === 0 && problems.length === 0) problems.push('no metric selector at all');
  const available = new Set([...TARGET_LABELS, ...metrics.flatMap((m) => [...(catalog.get(m) ?? [])])]);
  for (const label of grouping) {
    if (!available.has(label))
      problems.push(`grouping label ${label} is on none of ${[...new Set(metrics)].join(', ')}`);
  }
  return { metrics, problems };
}

// ------------------------------------------------------------------------------------------- evaluation

/** One scraped sample: metric name, labels, value. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * The Prometheus text exposition format (what /metrics serves), as samples; `target` labels are added to each
 * as a scrape adds its target labels (namespace, pod, job…).
 */
export function parseExposition(text: string, target: Record<string, string> = {}): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable sample: ${line}`);
    const labels: Record<string, string> = { ...target };
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}
export type Value =
  | { readonly type: 'scalar'; readonly value: number }
  | { readonly type: 'vector'; readonly series: readonly Series[] };

type Node = NonNullable<ReturnType<ReturnType<typeof parser.parse>['topNode']['getChild']>>;

const NAME = '__name__';
const ARITHMETIC: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => a / b,
  Mod: (a, b) => a % b,
  Pow: (a, b) => a ** b,
};
const COMPARISON: Record<string, (a: number, b: number) => boolean> = {
  Eql: (a, b) => a === b,
  Neq: (a, b) => a !== b,
  Gtr: (a, b) => a > b,
  Lss: (a, b) => a < b,
  Gte: (a, b) => a >= b,
  Lte: (a, b) => a <= b,
};
const AGGREGATE: Record<string, (values: number[]) => number> = {
  Sum: (v) => v.reduce((a, b) => a + b, 0),
  Min: (v) => Math.min(...v),
  Max: (v) => Math.max(...v),
  Avg: (v) => v.reduce((a, b) => a + b, 0) / v.length,
  Count: (v) => v.length,
};

/**
 * Evaluates `expr` as an instant query over `samples` (one scrape), at `time` (Unix seconds, what `time()`
 * returns), with Prometheus' semantics for the subset the alerts use: selectors with label matchers, numbers,
 * unary minus, arithmetic and comparisons (with `bool`) between scalars and vectors, one-to-one vector matching
 * with `on`/`ignoring`, `and`/`or`/`unless`, `sum`/`min`/`max`/`avg`/`count` with `by`/`without`, and `time()`,
 * `vector()`, `absent()`. Anything else (range vectors, rate, group_left…) throws: it needs more than one scrape.
 */
export function evaluate(expr: string, samples: readonly Sample[], o: { time: number }): Value {
  const tree = parser.parse(expr);
  let broken: string | undefined;
  tree.iterate({
    enter(n) {
      if (n.type.isError) broken ??= `syntax error at ${n.from} in ${expr}`;
    },
  });
  if (broken) throw new Error(broken);
  const text = (n: Node) => expr.slice(n.from, n.to);
  const children = (n: Node): Node[] => {
    const out: Node[] = [];
    for (let c = n.firstChild; c; c = c.nextSibling) out.push(c as Node);
    return out;
  };

  const evalNode = (n: Node): Value => {
    switch (n.name) {
      case 'PromQL':
      case 'ParenExpr':
        return evalNode(children(n).at(-1)!);
      case 'NumberDurationLiteral':
        return { type: 'scalar', value: Number(text(n)) };
      case 'VectorSelector':
        return { type: 'vector', series: select(n) };
      case 'UnaryExpr': {
        const [op, operand] = children(n);
        const v = evalNode(operand!);
        if (text(op!) === '+') return v;
        return v.type === 'scalar'
          ? { type: 'scalar', value: -v.value }
          : {
              type: 'vector',
              series: v.series.map((s) => ({ labels: dropName(s.labels), value: -s.value })),
            };
      }
      case 'FunctionCall':
        return call(n);
      case 'AggregateExpr':
        return aggregate(n);
      case 'BinaryExpr':
        return binary(n);
      default:
        throw new Error(`the PromQL evaluator does not support ${n.name}: ${text(n)}`);
    }
  };

  const select = (n: Node): Series[] => {
    const name = text(n.getChild('Identifier')!);
    const matchers = (n.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []).map((m) => {
      const label = text(m.getChild('LabelName')!);
      const op = m.getChild('MatchOp')!.firstChild!.name;
      const value = text(m.getChild('StringLiteral')!)
        .slice(1, -1)
        .replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
      const re = new RegExp(`^(?:${value})$`);
      return (labels: Readonly<Record<string, string>>) => {
        const v = labels[label] ?? '';
        if (op === 'EqlSingle') return v === value;
        if (op === 'Neq') return v !== value;
        if (op === 'EqlRegex') return re.test(v);
        return !re.test(v);
      };
    });
    return samples
      .filter((s) => s.name === name && matchers.every((m) => m(s.labels)))
      .map((s) => ({ labels: { ...s.labels, [NAME]: s.name }, value: s.value }));
  };

  const call = (n: Node): Value => {
    const fn = n.getChild('FunctionIdentifier')!.firstChild!.name;
    const args = children(n.getChild('FunctionCallBody')!).map(evalNode);
    if (fn === 'Time') return { type: 'scalar', value: o.time };
    if (fn === 'Vector' && args[0]?.type === 'scalar')
      return { type: 'vector', series: [{ labels: {}, value: args[0].value }] };
    if (fn === 'Absent' && args[0]?.type === 'vector')
      return { type: 'vector', series: args[0].series.length ? [] : [{ labels: {}, value: 1 }] };
    throw new Error(`the PromQL evaluator does not support ${text(n)}`);
  };

  const grouping = (n: Node | null) => {
    if (!n) return undefined;
    return {
      without: n.getChild('Without') !== null,
      labels: (n.getChild('GroupingLabels')?.getChildren('LabelName') ?? []).map(text),
    };
  };

  const aggregate = (n: Node): Value => {
    const op = n.getChild('AggregateOp')!.firstChild!.name;
    const f = AGGREGATE[op];
    if (!f) throw new Error(`the PromQL evaluator does not support ${text(n)}`);
    const arg = evalNode(children(n.getChild('FunctionCallBody')!)[0]!);
    if (arg.type !== 'vector') throw new Error(`${op} of a scalar: ${text(n)}`);
    const g = grouping(n.getChild('AggregateModifier'));
    const groups = new Map<string, { labels: Record<string, string>; values: number[] }>();
    for (const s of arg.series) {
      const labels = g ? (g.without ? omit(dropName(s.labels), g.labels) : pick(s.labels, g.labels)) : {};
      const k = signature(labels);
      const group = groups.get(k) ?? { labels, values: [] };
      group.values.push(s.value);
      groups.set(k, group);
    }
    return {
      type: 'vector',
      series: [...groups.values()].map((x) => ({ labels: x.labels, value: f(x.values) })),
    };
  };

  const binary = (n: Node): Value => {
    const parts = children(n);
    const lhs = evalNode(parts[0]!);
    const rhs = evalNode(parts.at(-1)!);
    const op = parts[1]!.name;
    const returnBool = n.getChild('BoolModifier') !== null;
    const clause = n.getChild('MatchingModifierClause');
    if (clause?.getChild('GroupLeft') || clause?.getChild('GroupRight'))
      throw new Error(`the PromQL evaluator does not support group_left/group_right: ${text(n)}`);
    const matching = clause
      ? {
          on: clause.getChild('On') !== null,
          labels: (clause.getChild('GroupingLabels')?.getChildren('LabelName') ?? []).map(text),
        }
      : undefined;
    const key = (labels: Readonly<Record<string, string>>) =>
      signature(
        matching?.on ? pick(labels, matching.labels) : omit(dropName(labels), matching?.labels ?? []),
      );

    if (op === 'And' || op === 'Or' || op === 'Unless') {
      if (lhs.type !== 'vector' || rhs.type !== 'vector')
        throw new Error(`${op} needs two vectors: ${text(n)}`);
      const right = new Set(rhs.series.map((s) => key(s.labels)));
      if (op === 'And') return { type: 'vector', series: lhs.series.filter((s) => right.has(key(s.labels))) };
      if (op === 'Unless')
        return { type: 'vector', series: lhs.series.filter((s) => !right.has(key(s.labels))) };
      const left = new Set(lhs.series.map((s) => key(s.labels)));
      return {
        type: 'vector',
        series: [...lhs.series, ...rhs.series.filter((s) => !left.has(key(s.labels)))],
      };
    }

    const arithmetic = ARITHMETIC[op];
    const compare = COMPARISON[op];
    if (!arithmetic && !compare) throw new Error(`the PromQL evaluator does not support ${op}: ${text(n)}`);
    /** The value of `a op b`, or undefined when a comparison filters the element out. */
    const apply = (a: number, b: number, keep: number): number | undefined => {
      if (arithmetic) return arithmetic(a, b);
      const ok = compare!(a, b);
      if (returnBool) return ok ? 1 : 0;
      return ok ? keep : undefined;
    };
    const dropsName = Boolean(arithmetic) || returnBool;
    const out = (labels: Readonly<Record<string, string>>) => (dropsName ? dropName(labels) : { ...labels });

    if (lhs.type === 'scalar' && rhs.type === 'scalar') {
      if (compare && !returnBool) throw new Error(`comparisons between scalars need bool: ${text(n)}`);
      return { type: 'scalar', value: apply(lhs.value, rhs.value, lhs.value)! };
    }
    if (lhs.type === 'vector' && rhs.type === 'scalar')
      return {
        type: 'vector',
        series: lhs.series.flatMap((s) => {
          const v = apply(s.value, rhs.value, s.value);
          return v === undefined ? [] : [{ labels: out(s.labels), value: v }];
        }),
      };
    if (lhs.type === 'scalar' && rhs.type === 'vector')
      return {
        type: 'vector',
        series: rhs.series.flatMap((s) => {
          const v = apply(lhs.value, s.value, s.value);
          return v === undefined ? [] : [{ labels: out(s.labels), value: v }];
        }),
      };
    // Two vectors, one-to-one: each side's elements must be unique by the matching labels.
    const l = lhs as Extract<Value, { type: 'vector' }>;
    const r = rhs as Extract<Value, { type: 'vector' }>;
    const byKey = new Map<string, Series>();
    for (const s of r.series) {
      const k = key(s.labels);
      if (byKey.has(k)) throw new Error(`many-to-one matching on the right of ${text(n)}: ${k}`);
      byKey.set(k, s);
    }
    const seen = new Set<string>();
    const series: Series[] = [];
    for (const s of l.series) {
      const k = key(s.labels);
      const match = byKey.get(k);
      if (!match) continue;
      if (seen.has(k)) throw new Error(`many-to-one matching on the left of ${text(n)}: ${k}`);
      seen.add(k);
      const v = apply(s.value, match.value, s.value);
      if (v === undefined) continue;
      let labels = out(s.labels);
      if (matching?.on) labels = { ...pick(labels, matching.labels), ...(dropsName ? {} : pickName(labels)) };
      else if (matching) labels = omit(labels, matching.labels);
      series.push({ labels, value: v });
    }
    return { type: 'vector', series };
  };

  return evalNode(tree.topNode as unknown as Node);
}

const signature = (labels: Readonly<Record<string, string>>) =>
  JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const dropName = (labels: Readonly<Record<string, string>>) => omit(labels, [NAME]);
const pickName = (labels: Readonly<Record<string, string>>) => pick(labels, [NAME]);
function pick(labels: Readonly<Record<string, string>>, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.filter((k) => labels[k] !== undefined).map((k) => [k, labels[k]!]));
}
function omit(labels: Readonly<Record<string, string>>, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => !names.includes(k)));
}
