import { access, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/adapters/clock/system-clock.js';
import { RedisControlPlane } from '../../src/adapters/redis/redis-control-plane.js';
import { loadConfig } from '../../src/config.js';
import { retrainFromFiles } from '../../src/wiring/jobs.js';
import { createService } from '../../src/wiring/service.js';
import { captureLogger, type LogLine } from '../helpers/logger.js';
import { trainingModule } from '../helpers/python.js';
import { deleteByPrefix } from '../helpers/redis.js';
import { LENIENT_GATE, testRetrain } from '../helpers/retrain.js';
import { requireRedis, uniqueName } from '../helpers/services.js';
import { tempDir } from '../helpers/temp-dir.js';

const TOKEN = 'test-admin-token-0123456789';

const auth = { authorization: `Bearer ${TOKEN}` };

/**
 * Issue 19 on generated data: retrain → v1 (no champion), retrain on more history → v2 gated against v1 with
 * bootstrap intervals (eligible), retrain with shuffled labels → v3 rejected, kept on disk, refused by the admin
 * API and accepted only with an audited override. Small models (--smoke) and 200 resamples, so it stays short.
 */
describe('fraudscore retrain', () => {
  it('publishes gated versions with model cards; a rejected one is refused unless overridden', async () => {
    const dir = await tempDir('retrain-');
    const raw = join(dir, 'raw.csv');
    const models = join(dir, 'models');
    await trainingModule('generate', [
      ...['--days', '62', '--customers', '600', '--terminals', '1200', '--seed', '3', '--output', raw],
    ]);
    const base = { ...testRetrain(), inputs: [raw], modelDir: models, gate: LENIENT_GATE };
    const v1 = await retrainFromFiles({ ...base, until: '2018-05-25' });
    expect(v1).toMatchObject({ version: '1', verdict: 'eligible' });

    const v2 = await retrainFromFiles(base);
    expect(v2).toMatchObject({
      version: '2',
      verdict: 'eligible',
      champion: { version: '1', source: 'latest_eligible' },
    });
    const m2 = JSON.parse(await readFile(join(models, 'fraudscore', '2', 'manifest.json'), 'utf8'));
    const card = m2.card;
    expect(card.gate.verdict).toBe('eligible');
    expect(card.champion).toMatchObject({ name: 'fraudscore', version: '1' });
    expect(card.evaluation).toMatchObject({ from: '2018-05-26', to: '2018-06-01' });
    expect(card.training.to).toBe('2018-05-25');
    expect(card.comparison).toMatchObject({ resamples: 200, seed: 7, confidence: 0.95 });
    for (const metric of ['auc_roc', 'average_precision', 'card_precision_at_100']) {
      const d = card.comparison.metrics[metric];
      expect(d.ci_lower).toBeLessThanOrEqual(d.ci_upper);
      expect(d.delta).toBeCloseTo(d.candidate - d.champion, 12);
    }
    expect(card.data.fingerprint.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(card.data).toMatchObject({ engine: 'node', history_to: '2018-06-01' });
    expect(card.trigger.kind).toBe('test');
    expect(card.members.map((m: { name: string }) => m.name)).toEqual(['lgbm', 'logreg', 'mlp']);
    expect(card.members[0].hyperparameters.n_estimators).toBe(60);
    expect(await readFile(join(models, 'fraudscore', '2', 'MODEL_CARD.md'), 'utf8')).toContain(
      'Gate verdict: `eligible`',
    );

    // The champion is the control plane's active version when there is one (here: v1, not the newest v2).
    const redis = await requireRedis();
    const prefix = uniqueName('retrain');
    const client = new Redis(redis.url);
    let v3: Awaited<ReturnType<typeof retrainFromFiles>>;
    try {
      await new RedisControlPlane(client, prefix, systemClock).write(
        'fraudscore',
        0,
        { active: '1' },
        'test',
      );
      v3 = await retrainFromFiles({
        ...base,
        controlPlane: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix },
        trainerOptions: ['--smoke', '--debug-shuffle-labels'],
      });
    } finally {
      await deleteByPrefix(client, prefix);
      client.disconnect();
    }
    expect(v3).toMatchObject({
      version: '3',
      verdict: 'rejected',
      champion: { version: '1', source: 'control_plane' },
    });
    // Kept for inspection, and nothing else left behind (no staging folder).
    expect((await readdir(join(models, 'fraudscore'))).sort()).toEqual(['1', '2', '3']);

    const logs: LogLine[] = [];
    const s = await createService(
      loadConfig({ MODEL_DIR: models, ADMIN_TOKEN: TOKEN, REQUEST_DEADLINE_MS: '10000' }),
      { logger: captureLogger(logs) },
    );
    try {
      const listed = (await s.app.inject({ url: '/admin/models', headers: auth })).json().models[0];
      expect(listed.active).toBe('2'); // the newest version its gate did not reject
      expect(listed.versions.map((v: { gate: string }) => v.gate)).toEqual([
        'eligible',
        'eligible',
        'rejected',
      ]);
      const refused = await s.app.inject({
        method: 'POST',
        url: '/admin/models/fraudscore/activate',
        headers: auth,
        payload: { version: '3' },
      });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.code).toBe('gate_rejected');
      const forced = await s.app.inject({
        method: 'POST',
        url: '/admin/models/fraudscore/activate?override=true&reason=retrain%20test',
        headers: auth,
        payload: { version: '3' },
      });
      expect(forced.statusCode).toBe(200);
      expect(forced.json().active).toBe('3');
      expect(logs.find((l) => l.audit === 'gate_override')).toMatchObject({
        version: '3',
        refused: 'gate_rejected',
        reason: 'retrain test',
      });
    } finally {
      await s.close();
    }
  }, 240_000);

  it('computes the same training set on DuckDB as on the node engine, labels that arrive later included (issue 22)', async () => {
    const dir = await tempDir('retrain-sql-');
    const raw = join(dir, 'raw.csv');
    // --labeled-at: a LABELED_AT column, many fraud labels known days after their transaction.
    await trainingModule('generate', [
      ...['--days', '30', '--customers', '200', '--terminals', '400', '--seed', '5', '--labeled-at'],
      ...['--output', raw],
    ]);
    const run = (engine: string) =>
      retrainFromFiles({
        ...testRetrain(),
        inputs: [raw],
        until: '2018-04-28',
        modelDir: join(dir, `models-${engine}`),
        engine,
        gate: { rules: [], resamples: 50, seed: 7, confidence: 0.95 },
        workDir: join(dir, `work-${engine}`),
        keepWork: true,
      });
    for (const e of ['node', 'duckdb']) await mkdir(join(dir, `work-${e}`));
    await run('node');
    await run('duckdb');
    const cardOf = async (engine: string) =>
      JSON.parse(await readFile(join(dir, `models-${engine}`, 'fraudscore', '1', 'manifest.json'), 'utf8'))
        .card;
    const [node, duck] = [await cardOf('node'), await cardOf('duckdb')];
    expect(duck.data.engine).toBe('duckdb');
    expect(duck.data.labels).toMatch(/^[1-9]\d* of \d+ fraud labels applied at their labeled_at/);
    expect(duck.data.labels).toEqual(node.data.labels);
    // The same rows, frauds, periods and members; only the trainer's command line names other folders.
    const withoutCommand = ({ command: _, ...rest }: Record<string, unknown>) => rest;
    expect(withoutCommand(duck.training)).toEqual(withoutCommand(node.training));
    expect(duck.data.fingerprint).toEqual(node.data.fingerprint);
    // The two training sets, value by value (the training package's comparison, within 1e-9).
    const sets = await Promise.all(
      ['node', 'duckdb'].map(async (e) => {
        const files = (await readdir(join(dir, `work-${e}`))).filter(
          (f) => f.endsWith('.csv') && f !== 'history.csv',
        );
        expect(files).toHaveLength(1);
        return join(dir, `work-${e}`, files[0]!);
      }),
    );
    await trainingModule('compare', [sets[0]!, sets[1]!]);
  }, 300_000);

  it('leaves no version folder when the trainer fails', async () => {
    const dir = await tempDir('retrain-fail-');
    const raw = join(dir, 'raw.csv');
    await trainingModule('generate', [
      ...['--days', '20', '--customers', '50', '--terminals', '100', '--seed', '1', '--output', raw],
    ]);
    const models = join(dir, 'models');
    await expect(
      retrainFromFiles({
        ...testRetrain(),
        inputs: [raw],
        modelDir: models,
        gate: { rules: [], resamples: 50, seed: 7, confidence: 0.95 },
        trainerOptions: ['--max-trees', '0'],
      }),
    ).rejects.toThrow(/max-trees/);
    expect(await readdir(join(models, 'fraudscore'))).toEqual([]);
    await expect(access(join(models, 'fraudscore', '1'))).rejects.toThrow();
  }, 60_000);
});
