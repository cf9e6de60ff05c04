import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const csv = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()))
  .pipe(z.array(z.string().min(1)).min(1));

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const otlpProtocol = z.enum(['http/protobuf', 'http/json'], {
  error: 'must be http/protobuf or http/json (OTLP over HTTP; grpc is not supported)',
});

/** Every environment variable fraudscore reads. The README's configuration table mirrors this schema. */
export const EnvSchema = z.object({
  HOST: z.string().default('0.0.0.0'),
  PORT: int(0, 65535).default(8080),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_CLUSTER_NODES: csv.optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]*$/)
    .default('fs'),
  KAFKA_BROKERS: csv.optional(),
  KAFKA_CLIENT_ID: z.string().min(1).default('fraudscore'),
  KAFKA_GROUP_ID: z.string().min(1).default('fraudscore-features'),
  /** How long the group waits for a silent worker before giving its partitions to another. */
  KAFKA_SESSION_TIMEOUT_MS: int(6000, 300_000).default(10_000),
  KAFKA_TOPIC_TRANSACTIONS: z.string().min(1).default('transactions'),
  KAFKA_TOPIC_LABELS: z.string().min(1).default('labels'),
  KAFKA_TOPIC_DEAD_LETTER: z.string().min(1).default('fraudscore-dead-letter'),
  KAFKA_TOPIC_DECISIONS: z.string().min(1).optional(),
  WORKER_IN_PROCESS: bool.default(false),
  /** Partitions a worker applies at once; their store writes overlap. */
  WORKER_CONCURRENCY: int(1, 64).default(4),
  /** Answers say `features_stale` once the workers have lagged this long without progress; 0 = never. */
  MAX_FEATURE_STALENESS_MS: int(0, 86_400_000).default(300_000),
  MODEL_DIR: z.string().min(1).default('models'),
  MODEL_NAME: z.string().min(1).default('fraudscore'),
  MODEL_VERSION: z.string().min(1).optional(),
  /** A version without a model card may not be activated or canaried without an audited override (prod: on). */
  REQUIRE_MODEL_CARD: bool.default(false),
  FEATURE_DIR: z.string().min(1).default('features'),
  /**
   * The feature sets this deployment serves and keeps current (ids, e.g. `transaction_v1,transaction_v2`); all of
   * FEATURE_DIR when unset. Every loaded set's entities are written by the worker and read by every score.
   */
  FEATURE_SETS: csv.optional(),
  FEATURE_RETENTION_GRACE_DAYS: z.coerce.number().min(0).max(365).default(1),
  /** Events (and score requests) dated more than this ahead of the processing clock are refused as `future`. */
  MAX_EVENT_FUTURE_MS: int(0, 365 * 24 * 3600 * 1000).default(600_000),
  REQUEST_DEADLINE_MS: int(1, 60_000).default(50),
  BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  BATCH_MAX_TRANSACTIONS: int(1, 10_000).default(1000),
  /** A batch's budget: REQUEST_DEADLINE_MS plus this per transaction (ms), up to BATCH_DEADLINE_MAX_MS. */
  BATCH_DEADLINE_PER_TRANSACTION_MS: z.coerce.number().min(0).max(1000).default(1),
  BATCH_DEADLINE_MAX_MS: int(1, 60_000).default(2000),
  MICROBATCH_ENABLED: bool.default(true),
  MICROBATCH_MAX_ROWS: int(1, 4096).default(32),
  MICROBATCH_MAX_WAIT_MS: z.coerce.number().min(0).max(100).default(1),
  ORT_INTRA_OP_THREADS: int(1, 64).default(1),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Bearer token for POST /v1/events; without it the route exists only on the embedded in-memory store. */
  EVENTS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  MODEL_WATCH: z.enum(['off', 'load', 'activate', 'canary']).default('off'),
  MODEL_WATCH_INTERVAL_MS: int(10, 3_600_000).default(5000),
  MODEL_WATCH_CANARY_PERCENT: z.coerce.number().gt(0).max(100).default(10),
  /** Answers remembered per process for retries of the same transaction id (about 1.5 KB each). */
  ANSWER_CACHE_SIZE: int(0, 10_000_000).default(20_000),
  /** How long the shared store keeps each answer, so a retry on any replica gets it (seconds). */
  ANSWER_TTL_SECONDS: int(1, 90 * 86_400).default(86_400),
  /** This replica's name in the control plane (default: host name, process id and a random suffix). */
  REPLICA_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,128}$/)
    .optional(),
  /** Re-read of the shared serving state under the change notifications, and the heartbeat period (ms). */
  CONTROL_POLL_MS: int(50, 600_000).default(5000),
  CONTROL_HEARTBEAT_MS: int(50, 600_000).default(5000),
  PSI_WINDOW: int(100, 10_000_000).default(10_000),
  /** Record every model version's decision per transaction for the label join (the decision log). */
  DECISION_LOG: bool.default(true),
  /** Decisions held for the decision log while the store is slow; beyond it they are dropped and counted. */
  DECISION_LOG_QUEUE: int(100, 10_000_000).default(50_000),
  /** How long decisions (and their outcomes per decision day) are kept for labels to join them. */
  LABEL_HORIZON_DAYS: int(1, 3650).default(120),
  /** A scored transaction with no label this long after its decision counts as legitimate. */
  LABEL_MATURITY_DAYS: int(1, 3650).default(60),
  /** How often a replica re-reads the decision log for the performance gauges (one report per period, seconds). */
  PERFORMANCE_REFRESH_SECONDS: int(1, 86_400).default(300),
  /** Below this many labelled frauds, champion against challenger says `insufficient_data`. */
  PERFORMANCE_MIN_FRAUDS: int(1, 1_000_000).default(30),
  /**
   * The promotion policy in this process: eligible versions go shadow → canary steps → active on the live
   * comparison, and back when worse or alarming. Needs DECISION_LOG (the comparison comes from it).
   */
  PROMOTION_POLICY: bool.default(false),
  PROMOTION_INTERVAL_MS: int(50, 86_400_000).default(60_000),
  /** Canary shares (percent, increasing, comma-separated) the candidate passes through before it is activated. */
  PROMOTION_CANARY_STEPS: z
    .string()
    .transform((s) => s.split(',').map((x) => Number(x.trim())))
    .pipe(
      z
        .array(z.number().gt(0).max(100))
        .refine((a) => a.every((x, i) => i === 0 || x > a[i - 1]!), 'must increase'),
    )
    .default([10, 50]),
  /** Labelled frauds of the candidate each stage needs before it may advance. */
  PROMOTION_MIN_FRAUDS: int(1, 1_000_000).default(30),
  /** A stage advances only when the 95 % interval of the candidate's AUC difference stays above −this. */
  PROMOTION_MAX_AUC_LOSS: z.coerce.number().min(0).max(1).default(0.01),
  /** Score PSI of the candidate above which it is rolled back, once its PSI window holds PROMOTION_MIN_PSI_OBSERVATIONS. */
  PROMOTION_MAX_SCORE_PSI: z.coerce.number().gt(0).default(0.2),
  PROMOTION_MIN_PSI_OBSERVATIONS: int(1, 10_000_000).default(1000),
  /** Share of the candidate's inference rows that failed above which it is rolled back (after 100 rows). */
  PROMOTION_MAX_ERROR_RATE: z.coerce.number().min(0).max(1).default(0.01),
  /** Alert floor for the active version's precision at its decline threshold (fraudscore_model_precision_floor). */
  PRECISION_AT_DECLINE_FLOOR: z.coerce.number().min(0).max(1).default(0.5),
  /** …once at least this many of its declines have an outcome (fraudscore_model_precision_floor_min_outcomes). */
  PRECISION_FLOOR_MIN_OUTCOMES: int(1, 100_000_000).default(200),
  METRICS_PORT: int(0, 65535).optional(),
  // OpenTelemetry tracing: the standard variables fraudscore itself decides on. The SDK reads the rest (OTEL_SDK_ENV).
  /** Tracing is off unless this names an exporter (the specification's `otlp` default is not assumed). */
  OTEL_TRACES_EXPORTER: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim().toLowerCase()))
    .pipe(
      z.array(z.enum(['otlp', 'console', 'none'], { error: 'each must be otlp, console or none' })).min(1),
    )
    .optional(),
  OTEL_SDK_DISABLED: bool.default(false),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol.optional(),
  /** Overrides OTEL_EXPORTER_OTLP_PROTOCOL for traces. */
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional(),
  OTEL_TRACES_SAMPLER: z
    .enum([
      'always_on',
      'always_off',
      'traceidratio',
      'parentbased_always_on',
      'parentbased_always_off',
      'parentbased_traceidratio',
    ])
    .default('parentbased_always_on'),
  /** The ratio of the `traceidratio` samplers. */
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).default(1),
});

/**
 * Standard OpenTelemetry variables the SDK reads itself when tracing is on (the exporter's endpoint, headers,
 * timeout, compression and certificates; the batch span processor's limits; the resource). The README lists them.
 */
export const OTEL_SDK_ENV = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_TIMEOUT',
  'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
  'OTEL_EXPORTER_OTLP_COMPRESSION',
  'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION',
  'OTEL_EXPORTER_OTLP_CERTIFICATE',
  'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE',
  'OTEL_EXPORTER_OTLP_CLIENT_KEY',
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
  'OTEL_BSP_EXPORT_TIMEOUT',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
] as const;

/** Values never repeated in an error message or a log line: a refused token must not be printed back. */
const SECRETS: ReadonlySet<string> = new Set(['ADMIN_TOKEN', 'EVENTS_TOKEN', 'REDIS_URL']);

export type Config = Readonly<z.infer<typeof EnvSchema>>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment once; the result is frozen so nothing can drift from what was validated. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.fromEntries(
    Object.keys(EnvSchema.shape).flatMap((k) => (env[k] === undefined || env[k] === '' ? [] : [[k, env[k]]])),
  );
  const parsed = EnvSchema.safeParse(known);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = String(i.path[0]);
      const got = SECRETS.has(key)
        ? `a value of ${String(known[key]).length} characters, not shown`
        : JSON.stringify(known[key]);
      return `  ${i.path.join('.')}: ${i.message} (got ${got})`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  if (c.ADMIN_TOKEN && c.ADMIN_TOKEN === c.EVENTS_TOKEN)
    throw new ConfigError(
      'invalid configuration:\n  EVENTS_TOKEN: must differ from ADMIN_TOKEN (separate roles)',
    );
  if (c.PROMOTION_POLICY && !c.DECISION_LOG)
    throw new ConfigError(
      'invalid configuration:\n  PROMOTION_POLICY: needs DECISION_LOG (the live comparison comes from the decision log)',
    );
  if (c.PROMOTION_POLICY && c.PSI_WINDOW < c.PROMOTION_MIN_PSI_OBSERVATIONS)
    throw new ConfigError(
      `invalid configuration:\n  PROMOTION_MIN_PSI_OBSERVATIONS: must not exceed PSI_WINDOW (${c.PSI_WINDOW}), or the PSI alarm never judges; got ${c.PROMOTION_MIN_PSI_OBSERVATIONS}`,
    );
  if (c.LABEL_MATURITY_DAYS > c.LABEL_HORIZON_DAYS)
    throw new ConfigError(
      `invalid configuration:\n  LABEL_MATURITY_DAYS: must not exceed LABEL_HORIZON_DAYS (${c.LABEL_HORIZON_DAYS}), got ${c.LABEL_MATURITY_DAYS}`,
    );
  return Object.freeze(c);
}
