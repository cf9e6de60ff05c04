/** What scoring records; prom-client's Histogram and Counter satisfy it (src/adapters/metrics). */
export interface ScoringMetrics {
  readonly stageDuration: { observe(labels: { stage: string }, seconds: number): void };
  readonly decisions: { inc(labels: { decision: string; model_version: string }): void };
  readonly score: { observe(labels: { model_version: string }, value: number): void };
  readonly degraded: { inc(labels: { reason: string }): void };
  readonly featureDefaulted: { inc(labels: { feature: string }): void };
}

/** What the HTTP layer records per request. */
export interface HttpMetrics {
  readonly httpDuration: {
    observe(labels: { route: string; method: string; status_code: string }, seconds: number): void;
  };
}
