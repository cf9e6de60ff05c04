/**
 * Cost of scoring on the fixture ensemble (two tiny members): the raw onnxruntime call, and LoadedVersion.score()
 * through the micro-batcher for 1 row and for 32 rows.
 *
 *   npx tsx bench/inference.bench.ts
 */
import { readFile } from 'node:fs/promises';
import { Bench } from 'tinybench';
import { systemClock } from '../src/adapters/clock/system-clock.js';
import { loadFeatureSets } from '../src/adapters/fs/feature-set-files.js';
import { FsModelRepository } from '../src/adapters/fs/model-repository.js';
import { OnnxModelRuntime } from '../src/adapters/onnx/onnx-runtime.js';
import { ModelRegistry } from '../src/usecases/models/registry.js';

const dir = process.env.BENCH_MODEL_DIR ?? 'test/fixtures/models';
const silent = { info() {}, warn() {}, error() {} };
const runtime = new OnnxModelRuntime({ intraOpNumThreads: 1 });
const repo = new FsModelRepository({ dir, runtime, featureSets: loadFeatureSets('features') });

function registry(enabled: boolean): ModelRegistry {
  return new ModelRegistry({
    source: repo,
    logger: silent,
    clock: systemClock,
    defaultModel: 'fraudscore',
    batching: { enabled, maxRows: 32, maxWaitMs: 1 },
    psiWindow: 10_000,
  });
}

const batched = registry(true);
const unbatched = registry(false);
const v = await batched.activate('fraudscore', '1');
const solo = await unbatched.activate('fraudscore', '1');
const m = v.manifest;
const rows = Array.from({ length: 32 }, (_, i) => Float32Array.from(m.golden[i % m.golden.length]!.inputs));
const flat32 = new Float32Array(32 * v.width);
rows.forEach((r, i) => flat32.set(r, i * v.width));
const member = m.members[1]!;
const raw = await runtime.load(await readFile(`${dir}/fraudscore/1/${member.file}`), member);

const bench = new Bench({ time: 1_500, warmupTime: 300 });
bench
  .add('raw run(), one member (mlp), 1 row', () => raw.run(rows[0]!, 1, v.width).then(() => undefined))
  .add('raw run(), one member (mlp), 32 rows', () => raw.run(flat32, 32, v.width).then(() => undefined))
  .add('score(), 1 row, batcher on', () => v.score(rows[0]!).then(() => undefined))
  .add('score(), 1 row, batcher off', () => solo.score(rows[0]!).then(() => undefined))
  .add('scoreMany(), 32 rows', () => v.scoreMany(rows).then(() => undefined))
  .add('32 concurrent score() calls, coalesced', () =>
    Promise.all(rows.map((r) => v.score(r))).then(() => undefined),
  );

await bench.run();
console.table(
  bench.tasks.map((t) => {
    const r = t.result;
    if (r.state !== 'completed') return { task: t.name, state: r.state };
    const per32 = t.name.includes('32') ? 32 : 1;
    return {
      task: t.name,
      'mean µs': (r.latency.mean * 1000).toFixed(1),
      'p50 µs': (r.latency.p50 * 1000).toFixed(1),
      'p99 µs': (r.latency.p99 * 1000).toFixed(1),
      'µs per row': ((r.latency.mean * 1000) / per32).toFixed(2),
      samples: r.latency.samplesCount,
    };
  }),
);
await raw.release();
await Promise.all([batched.close(), unbatched.close()]);
