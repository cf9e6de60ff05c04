import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { OnnxModelRuntime } from '../../../src/adapters/onnx/onnx-runtime.js';
import { type Manifest, ManifestSchema } from '../../../src/domain/models/manifest.js';

const dir = 'test/fixtures/models/fraudscore';
const manifest = async (v: string): Promise<Manifest> =>
  ManifestSchema.parse(JSON.parse(await readFile(`${dir}/${v}/manifest.json`, 'utf8')));

describe('OnnxModelRuntime', () => {
  it('reads P(fraud) from [N, 1], [N] and [N, 2] outputs, row for row', async () => {
    const runtime = new OnnxModelRuntime({ intraOpNumThreads: 1 });
    for (const v of ['1', '2']) {
      const m = await manifest(v);
      const width = m.inputs.length;
      const rows = new Float32Array(m.golden.length * width);
      m.golden.forEach((g, r) => rows.set(g.inputs, r * width));
      for (const [i, member] of m.members.entries()) {
        const session = await runtime.load(await readFile(`${dir}/${v}/${member.file}`), member);
        expect(session.inputNames).toEqual(['input']);
        const out = await session.run(rows, m.golden.length, width);
        expect(out).toHaveLength(m.golden.length);
        out.forEach((p, r) => expect(Math.abs(p - m.golden[r]!.members[i]!)).toBeLessThan(1e-6));
        await session.release();
        await session.release();
      }
    }
  });

  it('refuses an input buffer that does not match rows × width', async () => {
    const m = await manifest('1');
    const session = await new OnnxModelRuntime().load(await readFile(`${dir}/1/lr.onnx`), m.members[0]!);
    await expect(session.run(new Float32Array(10), 1, m.inputs.length)).rejects.toThrow(/expected 1 × 18/);
    await session.release();
  });

  it('refuses an output that is not float32 before any run, and a run after release', async () => {
    // The shipped logistic regression (skl2onnx) also has the class label output, int64 of shape [N].
    const shipped = ManifestSchema.parse(
      JSON.parse(await readFile('models/fraudscore/1/manifest.json', 'utf8')),
    );
    const logreg = shipped.members.find((m) => m.file === 'logreg.onnx')!;
    const bytes = await readFile('models/fraudscore/1/logreg.onnx');
    const runtime = new OnnxModelRuntime();
    await expect(
      runtime.load(bytes, { ...logreg, output_name: 'label', output_index: null }),
    ).rejects.toThrow(/^output "label" is int64, expected float32$/);
    await expect(runtime.load(bytes, { ...logreg, output_index: 2 })).rejects.toThrow(
      /^output "probabilities" is \[\?, 2\]; output_index 2 needs \[N, C\] with C > 2$/,
    );
    const session = await runtime.load(bytes, logreg);
    await session.release();
    await expect(
      session.run(new Float32Array(shipped.inputs.length), 1, shipped.inputs.length),
    ).rejects.toThrow(/released/);
  });
});
