/**
 * Run as a child process (`node --import tsx test/helpers/tracing-probe.ts`) with a configuration in its
 * environment: builds the service as `fraudscore serve` does, scores one transaction with the `traceparent` given
 * in PROBE_TRACEPARENT, closes (which flushes spans), and prints one line, `PROBE {json}`: which OpenTelemetry
 * packages the process loaded, and whether the service holds a tracer.
 */
import { createRequire } from 'node:module';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { createService } from '../../src/wiring/service.js';

const s = await createService(loadConfig(), { logger: pino({ level: 'silent' }) });
const r = await s.app.inject({
  method: 'POST',
  url: '/v1/score',
  headers: process.env.PROBE_TRACEPARENT ? { traceparent: process.env.PROBE_TRACEPARENT } : {},
  payload: {
    transaction_id: 'probe-SECRET-1',
    timestamp: '2018-08-09T10:00:00Z',
    customer_id: 'cust-SECRET-1',
    terminal_id: 'term-SECRET-1',
    device_id: 'dev-SECRET-1',
    amount: 42.5,
  },
});
const traced = s.tracing.tracer !== undefined;
await s.close();
const loaded = [
  ...new Set(
    Object.keys(createRequire(import.meta.url).cache)
      .filter((k) => k.includes('node_modules/@opentelemetry/'))
      .map((k) => k.split('node_modules/@opentelemetry/')[1]!.split('/')[0]!),
  ),
].sort();
console.log(`PROBE ${JSON.stringify({ status: r.statusCode, traced, loaded })}`);
