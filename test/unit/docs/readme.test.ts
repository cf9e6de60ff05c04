import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/adapters/metrics/metrics.js';
import { EnvSchema, OTEL_SDK_ENV } from '../../../src/config.js';

const readme = readFileSync('README.md', 'utf8');
const tableRows = (heading: string) => {
  const section = readme.split(/^## /m).find((s) => s.startsWith(heading)) ?? '';
  return [...section.matchAll(/^\|\s*`([A-Za-z_]+)`\s*\|/gm)].map((m) => m[1]!);
};

describe('README stays current', () => {
  it('documents every environment variable, and no other', () => {
    // Ours (src/config.ts), and the standard OpenTelemetry ones the SDK reads itself when tracing is on.
    expect(tableRows('Configuration').sort()).toEqual(
      [...Object.keys(EnvSchema.shape), ...OTEL_SDK_ENV].sort(),
    );
  });

  it('documents every fraudscore metric, and no other', async () => {
    const registry = new Registry();
    createMetrics(registry, { version: 'test', commit: 'test' });
    const ours = (await registry.getMetricsAsJSON())
      .map((m) => m.name)
      // prom-client's process and runtime metrics are covered by one sentence, not the table.
      .filter((n) => !/^(process|nodejs)_/.test(n));
    expect(ours.every((n) => n.startsWith('fraudscore_'))).toBe(true);
    expect(tableRows('Metrics').sort()).toEqual(ours.sort());
    const section = readme.split(/^## /m).find((s) => s.startsWith('Metrics')) ?? '';
    expect(section).toContain('`process_cpu_user_seconds_total`');
  });

  it('gives two command lines: one to run, one to test', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });
});
