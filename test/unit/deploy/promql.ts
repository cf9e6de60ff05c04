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
