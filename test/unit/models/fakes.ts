import { loadFeatureSets } from '../../../src/adapters/fs/feature-set-files.js';
import type { CompiledFeatureSet } from '../../../src/domain/features/engine.js';
import { ModelLoadError } from '../../../src/domain/models/load-error.js';
import { type Manifest, ManifestSchema } from '../../../src/domain/models/manifest.js';
import type { Clock } from '../../../src/ports/clock.js';
import type { ControlPlane } from '../../../src/ports/control-plane.js';
import type { MemberSession } from '../../../src/ports/model-runtime.js';
import type { ModelSource, VerifiedVersion } from '../../../src/ports/model-source.js';
import { ModelFleet } from '../../../src/usecases/models/fleet.js';
import { ModelRegistry } from '../../../src/usecases/models/registry.js';

export const featureSets: ReadonlyMap<string, CompiledFeatureSet> = loadFeatureSets('features');

export const silentLogger = { info() {}, warn() {}, error() {} };

export function fakeClock(): Clock & { advance(ms: number): void } {
  let t = 1_700_000_000_000;
  return {
    now: () => t,
    monotonic: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

/** A member whose P(fraud) is `offset` + 0.1 × the first input, clamped to [0, 1]; counts runs and releases. */
export class FakeSession implements MemberSession {
  readonly inputNames = ['input'];
  readonly outputNames = ['probability'];
  readonly runs: number[] = [];
  releases = 0;
  /** When set, runs wait for `open()`. */
  gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  fail: Error | undefined;

  constructor(readonly offset = 0) {}

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  open(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  async run(input: Float32Array, rows: number, width: number): Promise<Float32Array> {
    if (this.releases > 0) throw new Error('run on a released session');
    this.runs.push(rows);
    await new Promise((r) => setImmediate(r));
    if (this.gate) await this.gate;
    if (this.fail) throw this.fail;
    const out = new Float32Array(rows);
    for (let r = 0; r < rows; r++) out[r] = Math.min(1, Math.max(0, this.offset + 0.1 * input[r * width]!));
    return out;
  }

  async release(): Promise<void> {
    this.releases++;
  }
}

export const INPUTS = ['TX_AMOUNT', 'TX_DURING_NIGHT', 'CUSTOMER_ID_SECONDS_SINCE_PREV_TX'] as const;

const histogram = { edges: [0, 1, 2, 5], counts: [10, 40, 30, 15, 5] };

/** A valid manifest over three transaction_v2 inputs with two members, for tests that do not run real models. */
export function fakeManifest(version: string, overrides: Partial<Manifest> = {}): Manifest {
  return ManifestSchema.parse({
    schema_version: 1,
    name: 'fraudscore',
    version,
    created_at: '2025-01-01T00:00:00Z',
    feature_set: { name: 'transaction', version: 2 },
    inputs: [...INPUTS],
    members: ['a', 'b'].map((name) => ({
      name,
      family: 'fake',
      file: `${name}.onnx`,
      sha256: '0'.repeat(64),
      input_name: 'input',
      output_name: 'probability',
      output_index: null,
      weight: 1,
    })),
    combiner: { kind: 'weighted_mean' },
    thresholds: { review: 0.5, decline: 0.9, alert_budget: 'test' },
    importance: { TX_AMOUNT: 0.6, TX_DURING_NIGHT: 0.2, CUSTOMER_ID_SECONDS_SINCE_PREV_TX: 0.2 },
    reference: {
      rows: 100,
      features: Object.fromEntries(INPUTS.map((n) => [n, histogram])),
      score: histogram,
      moments: {
        TX_AMOUNT: { mean: 1, std: 1 },
        TX_DURING_NIGHT: { mean: 0.2, std: 0.4 },
        CUSTOMER_ID_SECONDS_SINCE_PREV_TX: { mean: 2, std: 1 },
      },
    },
    evaluation: { auc_roc: 0.9, version },
    training: { data_from: '2025-01-01', data_to: '2025-01-31', rows: 100, frauds: 1, seed: 1 },
    golden: [{ inputs: [1, 0, 2], members: [0.1, 0.1], score: 0.1 }],
    ...overrides,
  });
}

/** Versions 1..n of `fraudscore`; version v's members score offset v/100 higher. Records every session it hands out. */
export class FakeSource implements ModelSource {
  readonly sessions = new Map<string, FakeSession[]>();
  readonly failing = new Map<string, ModelLoadError>();
  loads = 0;

  constructor(readonly versions: readonly string[] = ['1', '2', '3']) {}

  async list(): Promise<ReadonlyMap<string, readonly string[]>> {
    return new Map([['fraudscore', this.versions]]);
  }

  async readManifest(name: string, version: string): Promise<Manifest> {
    if (name !== 'fraudscore' || !this.versions.includes(version))
      throw new ModelLoadError('not_found', `${name}/${version} does not exist`, name, version);
    return fakeManifest(version);
  }

  async load(name: string, version: string): Promise<VerifiedVersion> {
    this.loads++;
    const failure = this.failing.get(version);
    if (failure) throw failure;
    const manifest = await this.readManifest(name, version);
    const sessions = [new FakeSession(Number(version) / 100), new FakeSession(Number(version) / 100)];
    this.sessions.set(version, sessions);
    return { manifest, featureSet: featureSets.get('transaction_v2')!, sessions };
  }
}

/**
 * One replica of `fraudscore` on a shared control plane: a registry over `source` without micro-batching and a
 * fleet that starts from version 1 and only re-reads or beats when told (60 s timers). `close` stops both.
 */
export function fakeReplica(name: string, control: ControlPlane, source: ModelSource, clock: Clock) {
  const registry = new ModelRegistry({
    source,
    logger: silentLogger,
    clock,
    defaultModel: 'fraudscore',
    batching: { enabled: false, maxRows: 1, maxWaitMs: 0 },
    psiWindow: 100,
  });
  const fleet = new ModelFleet({
    registry,
    control,
    models: ['fraudscore'],
    replica: name,
    clock,
    logger: silentLogger,
    initialVersion: async () => '1',
    pollMs: 60_000,
    heartbeatMs: 60_000,
  });
  const close = async () => {
    await fleet.stop();
    await registry.close();
  };
  return { registry, fleet, close };
}
