/** What the shared answer store holds for a transaction id. */
export type Claim =
  /** Nobody held the id: the caller now does, and must `complete` or `release` it. */
  | { readonly state: 'claimed' }
  /** Another request is computing the answer for this content right now. */
  | { readonly state: 'pending'; readonly fingerprint: string }
  | { readonly state: 'answered'; readonly fingerprint: string; readonly answer: string };

/** An answer for the id its request claimed with `fingerprint`; `answer` is opaque to the store. */
export interface AnswerEntry {
  readonly id: string;
  readonly fingerprint: string;
  readonly answer: string;
}

/**
 * Answers by transaction id, shared by every replica, so that a retry anywhere gets the same answer and a
 * reused id with other content is refused anywhere. `fingerprint` identifies the request's content; `answer`
 * is opaque to the store. Times are milliseconds.
 */
export interface AnswerStore {
  /**
   * For each entry, in order: claims the id for the fingerprint when nothing holds it (the claim lapses after
   * `pendingTtlMs` unless completed), or says what holds it. Rejects when the store cannot answer.
   */
  claim(
    entries: readonly { readonly id: string; readonly fingerprint: string }[],
    pendingTtlMs: number,
  ): Promise<Claim[]>;
  /**
   * Replaces each of the caller's claims with its answer, kept `ttlMs`; a no-op for a claim that is no longer the
   * caller's. Rejects when the store cannot answer (some of the answers may have been kept).
   */
  complete(entries: readonly AnswerEntry[], ttlMs: number): Promise<void>;
  /** Drops the caller's claim (its answer is not to be remembered); a no-op when it is not the caller's. */
  release(id: string, fingerprint: string): Promise<void>;
  /** What holds the id now, if anything. */
  peek(id: string): Promise<Claim | undefined>;
}
