import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { ServiceError } from '../../domain/errors.js';
import { type Transaction, TransactionSchema } from '../../domain/events.js';
import { futureProblem } from '../../domain/ingest.js';
import { ScoreResultSchema } from '../../domain/scoring/result.js';
import type { FutureLimit } from '../../ports/clock.js';
import type { ScoringService } from '../../ports/scoring.js';
import { validationError } from '../errors.js';
import { documented } from '../openapi/route-doc.js';
import { BatchBodySchema, ScoreQuerySchema } from '../schemas.js';
import type { TraceOf } from '../tracing.js';

export interface ScoreRoutesOptions {
  readonly scoring: ScoringService;
  readonly deadlineMs: number;
  /** A batch's budget: `deadlineMs` plus this much per transaction, up to `batchDeadlineMaxMs`. */
  readonly batchDeadlinePerTransactionMs: number;
  readonly batchDeadlineMaxMs: number;
  readonly maxBatch: number;
  readonly now: () => number;
  /** A transaction dated further ahead of the processing clock is a 400, as the same event would be refused. */
  readonly limit: FutureLimit;
  /** The request's span, when tracing is on. */
  readonly trace?: TraceOf;
}

/** A caller may shorten, never lengthen, the budget: `X-Request-Deadline-Ms: 20`. */
export const DEADLINE_HEADER = 'x-request-deadline-ms';

const DeadlineHeaders = z.object({
  [DEADLINE_HEADER]: z
    .number()
    .positive()
    .optional()
    .describe('Shorter per-request budget in milliseconds (never longer than the configured one).'),
});
const SCORE_ERRORS = ['invalid_request', 'invalid_header', 'conflict'] as const;

export const scoreRoutes: FastifyPluginAsync<ScoreRoutesOptions> = async (app, o) => {
  const batchSchema = BatchBodySchema(o.maxBatch);

  const deadlineOf = (headers: Record<string, unknown>, start: number, budget = o.deadlineMs): number => {
    const raw = headers[DEADLINE_HEADER];
    if (raw === undefined) return start + budget;
    const ms = Number(raw);
    if (!Number.isFinite(ms) || ms <= 0)
      throw new ServiceError(
        'invalid_header',
        `${DEADLINE_HEADER} must be a positive number of milliseconds`,
      );
    return start + Math.min(ms, budget);
  };
  /** Sized to succeed: reading and scoring 1,000 transactions cannot fit the budget of one. */
  const batchBudget = (n: number) =>
    Math.max(
      o.deadlineMs,
      Math.min(o.batchDeadlineMaxMs, o.deadlineMs + o.batchDeadlinePerTransactionMs * n),
    );
  const explainOf = (query: unknown): boolean => {
    const q = ScoreQuerySchema.safeParse(query);
    if (!q.success) throw validationError(q.error, 'query');
    return q.data.explain === 'true' || q.data.explain === '1';
  };
  const refuseFuture = (tx: Transaction, prefix = '') => {
    const p = futureProblem('transaction', tx, o.limit.clock.now(), o.limit.maxFutureMs, prefix);
    if (p) throw new ServiceError('invalid_request', '1 problem(s) in the request', [p]);
  };

  const one = documented({
    summary: 'Score one transaction',
    query: ScoreQuerySchema,
    headers: DeadlineHeaders,
    body: TransactionSchema,
    responses: { 200: { description: 'Score, decision and reasons', schema: ScoreResultSchema } },
    errors: SCORE_ERRORS,
  });
  app.post('/v1/score', one, async (req) => {
    const start = o.now();
    const deadline = deadlineOf(req.headers, start);
    const explain = explainOf(req.query);
    const tx = TransactionSchema.safeParse(req.body);
    if (!tx.success) throw validationError(tx.error);
    refuseFuture(tx.data);
    const [result] = await o.scoring.score([tx.data], { explain, deadline, trace: o.trace?.(req) });
    return result;
  });

  const batch = documented({
    summary: `Score up to ${o.maxBatch} transactions in one inference batch per model member`,
    query: ScoreQuerySchema,
    headers: DeadlineHeaders,
    body: z.object({ transactions: z.array(TransactionSchema).min(1).max(o.maxBatch) }).strict(),
    responses: {
      200: {
        description: 'Results in request order',
        schema: z.object({ results: z.array(ScoreResultSchema) }),
      },
    },
    errors: SCORE_ERRORS,
  });
  app.post('/v1/score/batch', batch, async (req) => {
    const start = o.now();
    deadlineOf(req.headers, start);
    const explain = explainOf(req.query);
    const body = batchSchema.safeParse(req.body);
    if (!body.success) throw validationError(body.error);
    const deadline = deadlineOf(req.headers, start, batchBudget(body.data.transactions.length));
    const txs = body.data.transactions.map((t, i) => {
      const parsed = TransactionSchema.safeParse(t);
      if (!parsed.success) throw validationError(parsed.error, `transactions.${i}`);
      refuseFuture(parsed.data, `transactions.${i}`);
      return parsed.data;
    });
    const ids = new Set<string>();
    txs.forEach((t, i) => {
      if (ids.has(t.transaction_id))
        throw new ServiceError('invalid_request', 'duplicate transaction_id in batch', [
          { path: `transactions.${i}.transaction_id`, message: `${t.transaction_id} appears more than once` },
        ]);
      ids.add(t.transaction_id);
    });
    return { results: await o.scoring.score(txs, { explain, deadline, trace: o.trace?.(req) }) };
  });
};
