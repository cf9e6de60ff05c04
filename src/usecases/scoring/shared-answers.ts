import { hash } from 'node:crypto';
import { ServiceError } from '../../domain/errors.js';
import type { ScoreResult } from '../../domain/scoring/result.js';
import type { AnswerStore, Claim } from '../../ports/answer-store.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';
import { type Deadline, withDeadline } from './deadline.js';

/** An answer as every replica keeps it: the result without `features`, and the features by name for ?explain. */
export interface StoredAnswer {
  readonly result: ScoreResult;
  readonly features: Record<string, number>;
}

/** What to do with one transaction after the shared store was asked. */
export type SharedOutcome =
  /** Score it. `owned`: this request holds the id and must remember or forget the answer; `pending`: another
   * request holds it and will answer, so this one waits for that answer (and never audits). */
  | { readonly kind: 'compute'; readonly owned: boolean; readonly pending: boolean }
  | { readonly kind: 'answered'; readonly stored: StoredAnswer };

export interface SharedAnswersDeps {
  readonly store: AnswerStore;
  /** How long an answer is kept (ANSWER_TTL_SECONDS, in ms). */
  readonly ttlMs: number;
  /** How long a claim waits for its answer before another request may take the id (ms). */
  readonly pendingTtlMs: number;
  readonly clock: Clock;
  readonly logger: Pick<Logger, 'warn'>;
  /** Pause between looks at an id another request is answering (ms; default 2). */
  readonly pollMs?: number;
  /**
   * Answers waiting to be kept; beyond it the newest are not kept, and their ids are given back (a retry then
   * scores again). Default 2,000: at one round trip per KEEP_CHUNK, well within a claim's `pendingTtlMs`.
   */
  readonly maxBacklog?: number;
}

/**
 * Answers kept per store round trip. A batch's thousand answers (~1.5 KB each) sent at once sat in Redis ahead of
 * the next request's reads on the same connection, past its deadline; in chunks, a read waits behind one at most.
 */
const KEEP_CHUNK = 64;
/** How long one chunk may take before the next is sent: a stalled store must not stop all keeping (ms). */
const KEEP_TIMEOUT_MS = 1_000;

/**
 * Idempotency across replicas: the answer to a transaction id lives in the shared store, so a retry on any
 * replica gets the same answer, other content under the same id is a conflict anywhere, and of two requests
 * racing on one id, one computes (and audits) and the other returns its answer. The store failing never fails a
 * request: it is then scored as if new, remembered by this process only.
 */
export class SharedAnswers {
  private readonly backlog: { id: string; fingerprint: string; answer: StoredAnswer }[] = [];
  private keeping: Promise<void> | undefined;
  private dropping = false;

  constructor(private readonly d: SharedAnswersDeps) {}

  /** A short, fixed-size fingerprint of a request's content, as the store keeps it (SHA-256, base64url). */
  fingerprint(content: string): string {
    // The one-shot form: no Hash object per request.
    return hash('sha256', content, 'base64url');
  }

  /**
   * Claims each id (one round trip for all). Throws ServiceError `conflict` when an id holds other content,
   * after giving back the ids this call claimed. A store that has not answered by the request's `deadline` is
   * treated as unavailable: a stalled store must not hold an answer the features gave up waiting for.
   */
  async claim(
    items: readonly { id: string; fingerprint: string }[],
    deadline: Deadline,
  ): Promise<SharedOutcome[]> {
    let claims: Claim[];
    try {
      claims = await deadline.race(this.d.store.claim(items, this.d.pendingTtlMs));
    } catch (err) {
      this.d.logger.warn({ err }, 'answer store unavailable; answers are remembered by this replica only');
      return items.map(() => ({ kind: 'compute', owned: false, pending: false }));
    }
    const conflict = items.findIndex((it, k) => {
      const c = claims[k]!;
      return c.state !== 'claimed' && c.fingerprint !== it.fingerprint;
    });
    if (conflict >= 0) {
      items.forEach((it, k) => {
        if (claims[k]!.state === 'claimed') this.forget(it.id, it.fingerprint);
      });
      throw new ServiceError(
        'conflict',
        `transaction ${items[conflict]!.id} was already scored with different content`,
      );
    }
    return claims.map((c): SharedOutcome => {
      if (c.state === 'answered') return { kind: 'answered', stored: JSON.parse(c.answer) as StoredAnswer };
      return { kind: 'compute', owned: c.state === 'claimed', pending: c.state === 'pending' };
    });
  }

  /**
   * Keeps the answer of an id this request claimed, off the response path: on the next turn, where the decision
   * recorder writes too, so that a store that pipelines a turn's commands sends both in one write; KEEP_CHUNK
   * answers per round trip, one round trip after another.
   */
  remember(id: string, fingerprint: string, answer: StoredAnswer): void {
    if (this.backlog.length >= (this.d.maxBacklog ?? 2_000)) {
      if (!this.dropping)
        this.d.logger.warn({ transaction_id: id }, 'answers not stored: too many waiting to be kept');
      this.dropping = true;
      this.forget(id, fingerprint);
      return;
    }
    this.dropping = false;
    this.backlog.push({ id, fingerprint, answer });
    this.keeping ??= this.keep().finally(() => {
      this.keeping = undefined;
    });
  }

  /** Resolves once every answer given to `remember` so far was kept (or given up on): before the store closes. */
  async flush(): Promise<void> {
    while (this.keeping) await this.keeping;
  }

  private async keep(): Promise<void> {
    while (this.backlog.length > 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const chunk = this.backlog.splice(0, KEEP_CHUNK);
      const kept = Promise.resolve()
        .then(() =>
          this.d.store.complete(
            chunk.map(({ id, fingerprint, answer }) => ({ id, fingerprint, answer: JSON.stringify(answer) })),
            this.d.ttlMs,
          ),
        )
        .catch((err: unknown) =>
          this.d.logger.warn(
            { err, answers: chunk.length, transaction_id: chunk[0]!.id },
            'answers not stored',
          ),
        );
      await withDeadline(kept, KEEP_TIMEOUT_MS).catch(() =>
        this.d.logger.warn({ answers: chunk.length }, 'answer store slow; keeping the next answers'),
      );
    }
  }

  /** Gives back an id this request claimed: its answer (degraded) is not to be remembered. */
  forget(id: string, fingerprint: string): void {
    this.d.store.release(id, fingerprint).catch(() => undefined);
  }

  /** The answer another request is computing for this content, if it arrives before `deadline` (monotonic ms). */
  async awaitOther(id: string, fingerprint: string, deadline: number): Promise<StoredAnswer | undefined> {
    const pause = this.d.pollMs ?? 2;
    while (this.d.clock.monotonic() < deadline) {
      const c = await withDeadline(this.d.store.peek(id), deadline - this.d.clock.monotonic()).catch(
        () => undefined,
      );
      if (c?.state === 'answered' && c.fingerprint === fingerprint)
        return JSON.parse(c.answer) as StoredAnswer;
      if (!c || c.state === 'claimed') return undefined;
      await new Promise((r) => setTimeout(r, pause));
    }
    return undefined;
  }
}
