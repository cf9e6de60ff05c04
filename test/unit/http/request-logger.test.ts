import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { REDACT } from '../../../src/adapters/logging/logger.js';
import { registerErrorHandling } from '../../../src/http/errors.js';
import { DeferredRequestLogger, deferredRequestLogger } from '../../../src/http/request-logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info', redact: { paths: REDACT, censor: '[redacted]' } },
    { write: (line: string) => void lines.push(JSON.parse(line)) },
  );
  return { logger, lines };
}

describe('DeferredRequestLogger', () => {
  it('makes its child on the first line, with the bindings and the redaction of the parent', () => {
    const { logger, lines } = capture();
    const log = new DeferredRequestLogger(logger, { reqId: 'r-1' }, {});
    expect(log.level).toBe('info');
    expect(log.materialized).toBe(false);
    log.info({ headers: { authorization: 'Bearer x' }, body: { device_id: 'd-1' } }, 'hello');
    expect(log.materialized).toBe(true);
    expect(lines).toEqual([
      expect.objectContaining({
        reqId: 'r-1',
        msg: 'hello',
        headers: { authorization: '[redacted]' },
        body: { device_id: '[redacted]' },
      }),
    ]);
  });

  it('keeps a level the route asked for, and a child of it carries both bindings', () => {
    const { logger, lines } = capture();
    const log = new DeferredRequestLogger(logger, { reqId: 'r-2' }, { level: 'warn' });
    expect(log.level).toBe('warn');
    log.info('dropped');
    log.child({ step: 'x' }).warn('kept');
    expect(lines).toEqual([expect.objectContaining({ reqId: 'r-2', step: 'x', msg: 'kept' })]);
  });

  it("is Fastify's request logger: an unhandled error's line carries the request id", async () => {
    const { logger, lines } = capture();
    const app = Fastify({
      loggerInstance: logger as FastifyBaseLogger,
      requestIdHeader: 'x-request-id',
      childLoggerFactory: deferredRequestLogger,
    });
    registerErrorHandling(app);
    app.get('/ok', async () => ({ ok: true }));
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    const ok = await app.inject({ url: '/ok', headers: { 'x-request-id': 'req-ok' } });
    const boom = await app.inject({ url: '/boom', headers: { 'x-request-id': 'req-boom' } });
    expect([ok.statusCode, boom.statusCode]).toEqual([200, 500]);
    const errors = lines.filter((l) => l.msg === 'unhandled error');
    expect(errors).toEqual([expect.objectContaining({ reqId: 'req-boom', level: 50 })]);
    await app.close();
  });
});
