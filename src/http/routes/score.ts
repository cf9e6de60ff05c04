import type { FastifyPluginAsync } from 'fastify';
import { ConflictError } from '../../domain/errors.js';
import { type Transaction, TransactionSchema } from '../../domain/events.js';
import { futureProblem } from '../../domain/ingest.js';
import type { FutureLimit } from '../../ports/clock.js';
import type { ScoreOptions, ScoringService } from '../../ports/scoring.js';
import { HttpError, validationError } from '../errors.js';
import { BatchBodySchema, ScoreQuerySchema } from '../schemas.js';

export interface ScoreRoutesOptions {
  readonly scoring: ScoringService;
  readonly deadlineMs: number;
  readonly maxBatch: number;
  readonly now: () => number;
  /** A transaction dated further ahead of the processing clock is a 400, as the same event would be refused. */
  readonly limit: FutureLimit;
}

/** A caller may shorten, never lengthen, the budget: `X-Request-Deadline-Ms: 20`. */
export const DEADLINE_HEADER = 'x-request-deadline-ms';

export const scoreRoutes: FastifyPluginAsync<ScoreRoutesOptions> = async (app, o) => {
  const batchSchema = BatchBodySchema(o.maxBatch);

  const deadlineOf = (headers: Record<string, unknown>, start: number): number => {
    const raw = headers[DEADLINE_HEADER];
    if (raw === undefined) return start + o.deadlineMs;
    const ms = Number(raw);
    if (!Number.isFinite(ms) || ms <= 0)
      throw new HttpError(
        400,
        'invalid_header',
        `${DEADLINE_HEADER} must be a positive number of milliseconds`,
      );
    return start + Math.min(ms, o.deadlineMs);
  };
  const explainOf = (query: unknown): boolean => {
    const q = ScoreQuerySchema.safeParse(query);
    if (!q.success) throw validationError(q.error, 'query');
    return q.data.explain === 'true' || q.data.explain === '1';
  };
  const refuseFuture = (tx: Transaction, prefix = '') => {
    const p = futureProblem('transaction', tx, o.limit.clock.now(), o.limit.maxFutureMs, prefix);
    if (p) throw new HttpError(400, 'invalid_request', '1 problem(s) in the request', [p]);
  };

  app.post('/v1/score', async (req) => {
    const start = o.now();
    const deadline = deadlineOf(req.headers, start);
    const explain = explainOf(req.query);
    const tx = TransactionSchema.safeParse(req.body);
    if (!tx.success) throw validationError(tx.error);
    refuseFuture(tx.data);
    const [result] = await scoreOrConflict(o.scoring, [tx.data], { explain, deadline });
    return result;
  });

  app.post('/v1/score/batch', async (req) => {
    const start = o.now();
    const deadline = deadlineOf(req.headers, start);
    const explain = explainOf(req.query);
    const body = batchSchema.safeParse(req.body);
    if (!body.success) throw validationError(body.error);
    const txs = body.data.transactions.map((t, i) => {
      const parsed = TransactionSchema.safeParse(t);
      if (!parsed.success) throw validationError(parsed.error, `transactions.${i}`);
      refuseFuture(parsed.data, `transactions.${i}`);
      return parsed.data;
    });
    const ids = new Set<string>();
    txs.forEach((t, i) => {
      if (ids.has(t.transaction_id))
        throw new HttpError(400, 'invalid_request', 'duplicate transaction_id in batch', [
          { path: `transactions.${i}.transaction_id`, message: `${t.transaction_id} appears more than once` },
        ]);
      ids.add(t.transaction_id);
    });
    return { results: await scoreOrConflict(o.scoring, txs, { explain, deadline }) };
  });
};

async function scoreOrConflict(scoring: ScoringService, txs: Transaction[], o: ScoreOptions) {
  try {
    return await scoring.score(txs, o);
  } catch (err) {
    if (err instanceof ConflictError) throw new HttpError(409, 'conflict', err.message);
    throw err;
  }
}
