import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { fileRows } from '../../src/adapters/fs/handbook-csv.js';
import { FsModelRepository } from '../../src/adapters/fs/model-repository.js';
import { OnnxModelRuntime } from '../../src/adapters/onnx/onnx-runtime.js';
import { loadConfig } from '../../src/config.js';
import { backfillToCsv } from '../../src/wiring/jobs.js';
import { createService } from '../../src/wiring/service.js';
import { silentLogger } from '../helpers/logger.js';
import { trainingModule } from '../helpers/python.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The whole ML path on small generated data: generate → TS backfill → train and export → serve from TypeScript. */
describe('training pipeline smoke', () => {
  it('produces a model version the service verifies, loads and scores with', async () => {
    const dir = await tempDir('smoke-');
    const raw = join(dir, 'raw.csv');
    const features = join(dir, 'features.csv');
    const models = join(dir, 'models');
    const sets = loadFeatureSets('features');
    await trainingModule('generate', [
      '--days',
      '40',
      '--customers',
      '200',
      '--terminals',
      '400',
      '--seed',
      '1',
      '--output',
      raw,
    ]);
    await backfillToCsv(fileRows([raw]), { set: sets.get('transaction_v2')!, output: features });
    await trainingModule('train', [
      ...['--features', features, '--out', models, '--name', 'smoke', '--version', '1'],
      ...['--feature-set', 'transaction_v2', '--train-until', '2018-08-01', '--seed', '7', '--smoke'],
    ]);

    // Checksums, ONNX names, feature set, and every golden example within 1e-5 in onnxruntime-node.
    const repo = new FsModelRepository({ dir: models, runtime: new OnnxModelRuntime(), featureSets: sets });
    const v = await repo.load('smoke', '1');
    expect(v.manifest.members.length).toBeGreaterThanOrEqual(3);
    await Promise.all(v.sessions.map((s) => s.release()));

    const s = await createService(
      loadConfig({ MODEL_DIR: models, MODEL_NAME: 'smoke', REQUEST_DEADLINE_MS: '10000' }),
      {
        logger: silentLogger(),
      },
    );
    try {
      const r = await s.app.inject({
        method: 'POST',
        url: '/v1/score',
        payload: {
          transaction_id: 's1',
          timestamp: '2018-05-20T10:00:00Z',
          customer_id: '1',
          terminal_id: '2',
          amount: 300,
        },
      });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({
        model: { name: 'smoke', version: '1', feature_set: 'transaction_v2' },
        degraded: false,
      });
    } finally {
      await s.close();
    }
  }, 180_000);
});
