import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsModelRepository } from '../../../src/adapters/fs/model-repository.js';
import { OnnxModelRuntime } from '../../../src/adapters/onnx/onnx-runtime.js';
import { type LoadFailure, ModelLoadError } from '../../../src/domain/models/load-error.js';
import type { Manifest } from '../../../src/domain/models/manifest.js';
import { ModelRegistry } from '../../../src/usecases/models/registry.js';
import { fakeClock, featureSets, silentLogger } from './fakes.js';

const FIXTURES = 'test/fixtures/models';

let dir: string;
let repo: FsModelRepository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fraudscore-models-'));
  await cp(FIXTURES, dir, { recursive: true, filter: (src) => !src.endsWith('.py') });
  repo = new FsModelRepository({ dir, runtime: new OnnxModelRuntime(), featureSets });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const versionDir = (v: string) => join(dir, 'fraudscore', v);
const readManifest = async (v: string): Promise<Manifest> =>
  JSON.parse(await readFile(join(versionDir(v), 'manifest.json'), 'utf8'));
const writeManifest = (v: string, m: unknown) =>
  writeFile(join(versionDir(v), 'manifest.json'), JSON.stringify(m));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('FsModelRepository', () => {
  it('lists complete versions only', async () => {
    await mkdir(join(dir, 'fraudscore', '3'));
    await writeFile(join(dir, 'fraudscore', '3', 'lr.onnx'), 'half-written');
    await mkdir(join(dir, 'fraudscore', '.tmp-4'));
    await mkdir(join(dir, 'Not_A_Model'));
    expect(await repo.list()).toEqual(new Map([['fraudscore', ['1', '2']]]));
  });

  it('loads both fixture versions, which reproduce their golden examples and score differently', async () => {
    const scores: number[][] = [];
    for (const v of ['1', '2']) {
      const { manifest, sessions, featureSet } = await repo.load('fraudscore', v);
      expect(featureSet.id).toBe('transaction_v2');
      expect(sessions).toHaveLength(2);
      const row = Float32Array.from(manifest.golden[2]!.inputs);
      const out = await Promise.all(sessions.map((s) => s.run(row, 1, row.length)));
      out.forEach((o, i) => expect(o[0]).toBeCloseTo(manifest.golden[2]!.members[i]!, 5));
      scores.push(manifest.golden.map((g) => g.score));
      await Promise.all(sessions.map((s) => s.release()));
    }
    expect(scores[0]).not.toEqual(scores[1]);
  });
});

describe('refusals', () => {
  async function registry() {
    const r = new ModelRegistry({
      source: repo,
      logger: silentLogger,
      clock: fakeClock(),
      defaultModel: 'fraudscore',
      batching: { enabled: true, maxRows: 32, maxWaitMs: 1 },
      psiWindow: 1000,
    });
    await r.activate('fraudscore', '1');
    return r;
  }

  /** v2, broken by `breakIt`, is refused with `code` and a reason matching `reason`; v1 keeps serving. */
  async function expectRefused(code: LoadFailure, reason: RegExp, version = '2') {
    const r = await registry();
    const err = await r.activate('fraudscore', version).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err).toMatchObject({ code, reason: expect.stringMatching(reason) });
    const lease = r.route('customer-1').primary;
    expect(lease.version.version).toBe('1');
    const golden = lease.version.manifest.golden[0]!;
    const scored = await lease.version.score(Float32Array.from(golden.inputs));
    expect(scored.score).toBeCloseTo(golden.score, 5);
    lease.release();
    const status = (await r.list())[0]!;
    expect(status.active).toBe('1');
    if (code !== 'invalid_reference' && code !== 'not_found')
      expect(status.versions.find((v) => v.version === version)).toMatchObject({ state: 'failed' });
    await r.close();
  }

  it('refuses a corrupt ONNX file', async () => {
    const bytes = new TextEncoder().encode('this is not an onnx model');
    await writeFile(join(versionDir('2'), 'mlp.onnx'), bytes);
    const m = await readManifest('2');
    m.members[1]!.sha256 = sha256(bytes);
    await writeManifest('2', m);
    await expectRefused('onnx_load_failed', /^cannot load mlp\.onnx: .+/);
  });

  it('refuses a checksum mismatch', async () => {
    const path = join(versionDir('2'), 'lr.onnx');
    const bytes = await readFile(path);
    bytes[bytes.length - 1]! ^= 0xff;
    await writeFile(path, bytes);
    const expected = (await readManifest('2')).members[0]!.sha256;
    await expectRefused(
      'checksum_mismatch',
      new RegExp(`^checksum mismatch for lr\\.onnx: expected ${expected}, got ${sha256(bytes)}$`),
    );
  });

  it('refuses inputs that are not in the feature set', async () => {
    const m = await readManifest('2');
    const old = m.inputs[3]!;
    m.inputs[3] = 'CUSTOMER_X';
    m.reference.features.CUSTOMER_X = m.reference.features[old]!;
    await writeManifest('2', m);
    await expectRefused('unknown_feature', /^feature CUSTOMER_X is not in transaction_v2$/);
  });

  it('refuses an unknown feature set', async () => {
    const m = await readManifest('2');
    m.feature_set.version = 9;
    await writeManifest('2', m);
    await expectRefused(
      'unknown_feature_set',
      /^feature set transaction_v9 is not known \(known: .*transaction_v2/,
    );
  });

  it('refuses a golden-example mismatch', async () => {
    const m = await readManifest('2');
    const manifestSays = m.golden[3]!.members[0]!;
    m.golden[3]!.members[0] = manifestSays + 0.04;
    await writeManifest('2', m);
    await expectRefused('golden_mismatch', /^golden example 3: member lr gave 0\.\d+, manifest says 0\.\d+$/);
  });

  it('refuses an ensemble golden score that does not follow from the members', async () => {
    const m = await readManifest('2');
    m.golden[1]!.score += 1e-3;
    await writeManifest('2', m);
    await expectRefused('golden_mismatch', /^golden example 1: ensemble gave /);
  });

  it('refuses output names the model does not have', async () => {
    const m = await readManifest('2');
    m.members[1]!.output_name = 'output_probability';
    await writeManifest('2', m);
    await expectRefused(
      'io_mismatch',
      /^mlp\.onnx has no output "output_probability" \(outputs: "label", "probabilities"\)$/,
    );
  });

  it('refuses an output_index that does not fit the declared output shape', async () => {
    const m = await readManifest('2');
    m.members[1]!.output_index = null;
    await writeManifest('2', m);
    await expectRefused(
      'onnx_load_failed',
      /^cannot load mlp\.onnx: output "probabilities" is \[N, 2\]; output_index null needs \[N\] or \[N, 1\]$/,
    );
  });

  it('refuses inputs the model was not built for', async () => {
    const m = await readManifest('2');
    m.inputs.pop();
    for (const g of m.golden) g.inputs.pop();
    await writeManifest('2', m);
    await expectRefused('io_mismatch', /^member lr cannot score the golden examples: .*dimension/i);
  });

  it('refuses a manifest that fails the schema, or describes another version', async () => {
    const m = await readManifest('2');
    await writeManifest('2', { ...m, golden: [] });
    await expectRefused('manifest_invalid', /golden: a manifest needs golden examples/);
    await writeManifest('2', { ...m, version: '7' });
    await expectRefused('manifest_invalid', /describes fraudscore@7, not fraudscore@2/);
  });

  it('refuses a member file that is missing, a version that is not there, and a path that is not a version', async () => {
    await rm(join(versionDir('2'), 'lr.onnx'));
    await expectRefused('missing_file', /^cannot read lr\.onnx/);
    await expectRefused('not_found', /does not exist/, '5');
    await expectRefused('invalid_reference', /not a positive integer/, '../1');
  });
});

describe('LoadedVersion on the fixture model', () => {
  it('scores, decides and explains', async () => {
    const r = new ModelRegistry({
      source: repo,
      logger: silentLogger,
      clock: fakeClock(),
      defaultModel: 'fraudscore',
      batching: { enabled: true, maxRows: 32, maxWaitMs: 1 },
      psiWindow: 1000,
    });
    const v = await r.activate('fraudscore', '1');
    const m = v.manifest;
    const rows = m.golden.map((g) => Float32Array.from(g.inputs));
    const results = await v.scoreMany(rows);
    results.forEach((res, i) => {
      expect(res.score).toBeCloseTo(m.golden[i]!.score, 5);
      expect(res.members).toHaveLength(2);
    });
    // golden 0 is a 2,500 transaction at night
    expect(v.directions[m.inputs.indexOf('TX_AMOUNT')]).toBe(1);
    expect(v.reasons(rows[0]!)[0]).toMatchObject({ feature: 'TX_AMOUNT', value: 2500 });
    expect(v.decide(results[0]!.score)).toBe(results[0]!.score >= m.thresholds.review ? 'review' : 'approve');

    const features = new Float64Array(v.featureSet.names.length).map((_, i) => i);
    expect(Array.from(v.input(features))).toEqual(m.inputs.map((n) => v.featureSet.names.indexOf(n)));
    await r.close();
  });
});
