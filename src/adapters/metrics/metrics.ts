import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';
import type { LabelFact, LabelResult } from '../../ports/decision-log.js';

const STAGE_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025,
  0.05, 0.1, 0.25, 0.5, 1,
];

/**
 * Every metric fraudscore exports, on the Registry it is given (never the global one). prom-client's process and
 * Node.js runtime metrics keep their standard names (`process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`…),
 * so stock Node.js dashboards and alerts find them; the application's own metrics carry the `fraudscore_` prefix.
 */
export function createMetrics(registry: Registry, build: { version: string; commit: string }) {
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  const m = {
    httpDuration: new Histogram({
      name: 'fraudscore_http_request_duration_seconds',
      help: 'HTTP request duration, by route template, method and status code.',
      labelNames: ['route', 'method', 'status_code'] as const,
      buckets: STAGE_BUCKETS,
      registers: r,
    }),
    stageDuration: new Histogram({
      name: 'fraudscore_scoring_stage_duration_seconds',
      help: 'Time spent per scoring stage: features, inference, ensemble, total.',
      labelNames: ['stage'] as const,
      buckets: STAGE_BUCKETS,
      registers: r,
    }),
    batchSize: new Histogram({
      name: 'fraudscore_inference_batch_size',
      help: 'Rows per ONNX run (micro-batching coalesces concurrent requests).',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers: r,
    }),
    decisions: new Counter({
      name: 'fraudscore_decisions_total',
      help: 'Decisions returned, by decision and the model version that decided.',
      labelNames: ['decision', 'model_version'] as const,
      registers: r,
    }),
    score: new Histogram({
      name: 'fraudscore_score',
      help: 'Ensemble fraud score, by model version (shadow versions included).',
      labelNames: ['model_version'] as const,
      buckets: [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99],
      registers: r,
    }),
    degraded: new Counter({
      name: 'fraudscore_degraded_total',
      help: 'Responses scored in a degraded mode, by reason.',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    featurePsi: new Gauge({
      name: 'fraudscore_feature_psi',
      help: 'Population stability index of recent traffic against the training reference, per input feature.',
      labelNames: ['feature', 'model_version'] as const,
      registers: r,
    }),
    scorePsi: new Gauge({
      name: 'fraudscore_score_psi',
      help: 'Population stability index of recent scores against the training reference.',
      labelNames: ['model_version'] as const,
      registers: r,
    }),
    featureDefaulted: new Counter({
      name: 'fraudscore_feature_defaulted_total',
      help: 'Features answered with their documented default: the store could not be read in time, or the request lacked a field they are keyed by (device_id, ip).',
      labelNames: ['feature'] as const,
      registers: r,
    }),
    featureFreshness: new Gauge({
      name: 'fraudscore_feature_freshness_seconds',
      help: 'Wall-clock age of the newest event time applied to the feature store by this process.',
      registers: r,
    }),
    featureStaleness: new Gauge({
      name: 'fraudscore_feature_staleness_seconds',
      help: 'Wall-clock time since the feature workers last made progress, counted only while they lag (0: current or no worker).',
      registers: r,
    }),
    featureWorkers: new Gauge({
      name: 'fraudscore_feature_workers',
      help: 'Feature workers whose progress records the API read last (the staleness is taken over them).',
      registers: r,
    }),
    events: new Counter({
      name: 'fraudscore_events_total',
      help: 'Events consumed, by topic and outcome (applied, duplicate, late, invalid, future).',
      labelNames: ['topic', 'outcome'] as const,
      registers: r,
    }),
    consumerLag: new Gauge({
      name: 'fraudscore_consumer_lag',
      help: 'Messages behind the high watermark, per topic partition: at each fetch, after each chunk and while a write waits.',
      labelNames: ['topic', 'partition'] as const,
      registers: r,
    }),
    workerLastApplied: new Gauge({
      name: 'fraudscore_worker_last_applied_timestamp_seconds',
      help: 'Wall-clock time when the partition last applied events in this worker (or was assigned to it).',
      labelNames: ['topic', 'partition'] as const,
      registers: r,
    }),
    deadLetters: new Counter({
      name: 'fraudscore_dead_letter_total',
      help: 'Messages sent to the dead-letter topic.',
      labelNames: ['topic'] as const,
      registers: r,
    }),
    storeWrite: new Histogram({
      name: 'fraudscore_store_write_duration_seconds',
      help: 'Duration of one feature-store write round trip (a chunk of events).',
      buckets: STAGE_BUCKETS,
      registers: r,
    }),
    modelInfo: new Gauge({
      name: 'fraudscore_model_info',
      help: 'Model versions serving, by role (active, canary, shadow); value 1.',
      labelNames: ['name', 'version', 'role'] as const,
      registers: r,
    }),
    modelLoads: new Counter({
      name: 'fraudscore_model_loads_total',
      help: 'Model version loads, by outcome (success, failure).',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    decisionsDropped: new Counter({
      name: 'fraudscore_decisions_dropped_total',
      help: 'Decision audit records not published to the decisions topic (queue full while the broker was away); the log keeps them.',
      registers: r,
    }),
    labelled: new Counter({
      name: 'fraudscore_labelled_total',
      help: "Labels joined with a model version's recorded decision (new or corrected; redeliveries not), by version, its decision and the label (fraud, not_fraud).",
      labelNames: ['model_version', 'decision', 'label'] as const,
      registers: r,
    }),
    labelsUnscored: new Counter({
      name: 'fraudscore_labels_unscored_total',
      help: 'Labels of transactions with no recorded decision of the model (never scored, or before the horizon); redeliveries not counted.',
      registers: r,
    }),
    decisionLogDropped: new Counter({
      name: 'fraudscore_decision_log_dropped_total',
      help: 'Decisions not recorded in the decision log, by reason (queue_full, store_error): their labels will count as unscored.',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    modelAuc: new Gauge({
      name: 'fraudscore_model_auc',
      help: 'ROC AUC of each model version on its labelled outcomes (explicit and matured), fleet-wide.',
      labelNames: ['model_version', 'role'] as const,
      registers: r,
    }),
    modelAveragePrecision: new Gauge({
      name: 'fraudscore_model_average_precision',
      help: 'Average precision of each model version on its labelled outcomes, fleet-wide.',
      labelNames: ['model_version', 'role'] as const,
      registers: r,
    }),
    modelPrecision: new Gauge({
      name: 'fraudscore_model_precision',
      help: 'Precision of each model version at its review (review or decline) and decline thresholds (`at`).',
      labelNames: ['model_version', 'role', 'at'] as const,
      registers: r,
    }),
    modelRecall: new Gauge({
      name: 'fraudscore_model_recall',
      help: 'Recall of each model version at its review and decline thresholds (`at`).',
      labelNames: ['model_version', 'role', 'at'] as const,
      registers: r,
    }),
    modelOutcomes: new Gauge({
      name: 'fraudscore_model_outcomes',
      help: 'Outcomes (explicit labels and matured decisions) per model version, its decision and the label, fleet-wide.',
      labelNames: ['model_version', 'role', 'decision', 'label'] as const,
      registers: r,
    }),
    precisionFloor: new Gauge({
      name: 'fraudscore_model_precision_floor',
      help: "PRECISION_AT_DECLINE_FLOOR: the alert fires when the active version's precision at decline is below it.",
      labelNames: ['at'] as const,
      registers: r,
    }),
    precisionFloorMinOutcomes: new Gauge({
      name: 'fraudscore_model_precision_floor_min_outcomes',
      help: 'PRECISION_FLOOR_MIN_OUTCOMES: declines with an outcome needed before the precision floor alert can fire.',
      registers: r,
    }),
    controlGeneration: new Gauge({
      name: 'fraudscore_control_generation',
      help: 'Generation of the shared serving state per model: desired (in the control plane) and applied (by this replica).',
      labelNames: ['model', 'role'] as const,
      registers: r,
    }),
    promotionTransitions: new Counter({
      name: 'fraudscore_promotion_transitions_total',
      help: 'Transitions the promotion policy made from this replica, by model and the stage reached (shadow, canary, active, rolled_back, cancelled).',
      labelNames: ['model', 'to'] as const,
      registers: r,
    }),
    buildInfo: new Gauge({
      name: 'fraudscore_build_info',
      help: 'Build of this process; value 1.',
      labelNames: ['version', 'commit'] as const,
      registers: r,
    }),
  };
  m.buildInfo.set(build, 1);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The worker's hooks, feeding its metrics; `applied` also gets the event time of the newest applied event. */
export function workerObserver(m: Metrics, applied: (eventTimeMs: number) => void) {
  return {
    events: (topic: string, outcome: string, n: number) => m.events.inc({ topic, outcome }, n),
    lag: (topic: string, partition: number, lag: number) =>
      m.consumerLag.set({ topic, partition: String(partition) }, lag),
    partitionApplied: (topic: string, partition: number, wallClockMs: number) =>
      m.workerLastApplied.set({ topic, partition: String(partition) }, wallClockMs / 1000),
    // Another worker reports the partition now; a value left here would linger as if it were current.
    released: (topic: string, partition: number) => {
      m.consumerLag.remove({ topic, partition: String(partition) });
      m.workerLastApplied.remove({ topic, partition: String(partition) });
    },
    storeWrite: (seconds: number) => m.storeWrite.observe(seconds),
    deadLetter: (topic: string) => m.deadLetters.inc({ topic }),
    applied,
  };
}

/** The label join's hook: counts labels joined per version (new or corrected) and new unscored ones. */
export function labelObserver(m: Metrics) {
  return (_model: string, label: LabelFact, r: LabelResult) => {
    if (r.unscored) {
      if (r.outcome === 'new') m.labelsUnscored.inc();
      return;
    }
    for (const v of r.versions)
      if (v.outcome !== 'duplicate')
        m.labelled.inc({
          model_version: v.version,
          decision: v.decision,
          label: label.fraud ? 'fraud' : 'not_fraud',
        });
  };
}
