import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../../src/cli/models.js';
import { UsageError } from '../../../src/cli/usage.js';
import { loadConfig } from '../../../src/config.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { silentLogger } from '../../helpers/logger.js';
import { tempDir, tempDirs } from '../../helpers/temp-dir.js';

const FIXTURES = 'test/fixtures/models';

/** Runs the command in-process; returns what it printed and the exit code it asked for. */
async function models(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => stdout.push(String(s)) > 0);
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => stderr.push(String(s)) > 0);
  try {
    await run(argv);
    return { stdout: stdout.join(''), stderr: stderr.join(''), code: process.exitCode ?? 0 };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = undefined;
  }
}

async function copyVersion(version: string): Promise<string> {
  const dir = join(await tempDir('candidate-'), 'out');
  await cp(join(FIXTURES, 'fraudscore', version), dir, { recursive: true });
  return dir;
}

describe('fraudscore models (on disk)', () => {
  it('lists versions with their manifest summary and evaluation', async () => {
    const r = await models('list', '--dir', FIXTURES);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`fraudscore (${join(FIXTURES, 'fraudscore')})`);
    expect(lines[1]).toMatch(
      /^\s+1 {2}transaction_v2 {2}created 2025-01-01T00:00:00Z {2}auc_roc=0\.5 .*Fixture v1/,
    );
    expect(lines[2]).toMatch(/^\s+2 {2}transaction_v2 .*Fixture v2/);
    const json = JSON.parse((await models('list', '--dir', FIXTURES, '--json')).stdout);
    expect(json.models[0].versions.map((v: { version: string }) => v.version)).toEqual(['1', '2']);
    expect(json.models[0].versions[0].evaluation.auc_roc).toBe(0.5);
  });

  it('lists an empty or missing directory without failing', async () => {
    const r = await models('list', '--dir', join(tmpdir(), 'no-such-models-dir'));
    expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(/^no model versions in /) });
  });

  it('validates a version folder in place and one outside the model directory', async () => {
    const inPlace = await models('validate', join(FIXTURES, 'fraudscore', '2'));
    expect(inPlace.code).toBe(0);
    expect(inPlace.stdout).toMatch(/^ok fraudscore@2: .*8 golden examples and warm-up passed/);
    const elsewhere = await models('validate', await copyVersion('1'));
    expect(elsewhere.code).toBe(0);
    expect(elsewhere.stdout).toMatch(/^ok fraudscore@1/);
  });

  it.each([
    ['a corrupt ONNX file', 'checksum_mismatch', /checksum mismatch for lr\.onnx/],
    ['a manifest that breaks the schema', 'manifest_invalid', /thresholds/],
    ['a golden example that no longer matches', 'golden_mismatch', /golden/],
    ['no manifest', 'missing', /cannot read manifest\.json/],
  ])('refuses %s with exit code 1 and the reason', async (_name, kind, reason) => {
    const dir = await copyVersion('2');
    const path = join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(path, 'utf8'));
    if (kind === 'checksum_mismatch') await writeFile(join(dir, 'lr.onnx'), 'not an onnx file');
    if (kind === 'manifest_invalid')
      await writeFile(path, JSON.stringify({ ...manifest, thresholds: { review: 0.9, decline: 0.1 } }));
    if (kind === 'golden_mismatch') {
      manifest.golden[0].score += 0.25;
      manifest.golden[0].members[0] += 0.25;
      await writeFile(path, JSON.stringify(manifest));
    }
    if (kind === 'missing') await rm(path);
    const r = await models('validate', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^refused /);
    expect(r.stderr).toMatch(reason);
    if (kind !== 'missing') expect(r.stderr).toContain(`(${kind})`);
  });

  it('refuses misuse with a UsageError', async () => {
    await expect(models()).rejects.toBeInstanceOf(UsageError);
    await expect(models('validate')).rejects.toBeInstanceOf(UsageError);
    await expect(models('canary', '2')).rejects.toBeInstanceOf(UsageError);
    await expect(models('canary', '2', '150', '--url', 'http://x')).rejects.toThrow(/percent/);
    await expect(models('activate', 'latest')).rejects.toThrow(/positive integer/);
    await expect(
      models('validate', join(FIXTURES, 'fraudscore', '2'), '--feature-dir', join(tmpdir(), 'no-features')),
    ).rejects.toThrow(/cannot read feature sets/);
  });
});

describe('fraudscore models (against a running service)', () => {
  const TOKEN = 'cli-admin-token-0123456789';
  let s: Service;
  let url: string;
  let saved: string | undefined;
  const tmp = tempDirs();
  beforeAll(async () => {
    saved = process.env.ADMIN_TOKEN;
    const dir = await tmp('models-');
    await cp(FIXTURES, dir, { recursive: true });
    s = await createService(loadConfig({ MODEL_DIR: dir, ADMIN_TOKEN: TOKEN, MODEL_VERSION: '1' }), {
      logger: silentLogger(),
    });
    url = await s.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await s.close();
    process.env.ADMIN_TOKEN = saved;
  });
  afterEach(() => {
    process.env.ADMIN_TOKEN = TOKEN;
  });
  const cli = (...argv: string[]) => {
    process.env.ADMIN_TOKEN = TOKEN;
    return models(...argv, '--url', url);
  };

  it('shows status, switches versions, and never prints the token', async () => {
    const outputs: string[] = [];
    const step = async (...argv: string[]) => {
      const r = await cli(...argv);
      outputs.push(r.stdout, r.stderr);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    expect(await step('status')).toMatch(/^fraudscore: active 1\n\s+1 {2}active/);
    expect(await step('activate', '2')).toMatch(/^fraudscore: active 2, rollback target 1/);
    expect(await step('canary', '1', '20')).toMatch(/canary 1 at 20%/);
    expect(await step('canary', '--clear')).not.toMatch(/canary 1/);
    expect(await step('rollback')).toMatch(/^fraudscore: active 1/);
    expect(await step('shadow', '2')).toMatch(/shadow 2/);
    expect(await step('shadow', '--clear')).not.toMatch(/shadow 2/);
    const json = JSON.parse(await step('status', '--json'));
    expect(json.models[0]).toMatchObject({ name: 'fraudscore', active: '1' });
    expect(outputs.join('')).not.toContain(TOKEN);
  });

  it('reports refusals with the status and reason, exit code 1', async () => {
    let r = await cli('activate', '9');
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(/^refused \(404 model_not_found\): /);
    process.env.ADMIN_TOKEN = 'wrong-token-0123456789';
    r = await models('status', '--url', url);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/403 forbidden/);
    expect(r.stderr).not.toContain('wrong-token');
    r = await models('status', '--url', 'http://127.0.0.1:9');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:9/);
    delete process.env.ADMIN_TOKEN;
    await expect(models('status', '--url', url)).rejects.toThrow(/ADMIN_TOKEN/);
  });
});
