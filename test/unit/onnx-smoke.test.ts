/**
 * Smoke test: onnxruntime-node's native binding loads and runs a tiny graph on the CPU.
 * test/fixtures/tiny.onnx (made by test/fixtures/make_tiny_onnx.py) computes
 *   logits = x @ W + b,  prob = sigmoid(logits)   with x: float32 [N, 3].
 */
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MODEL = fileURLToPath(new URL('../fixtures/tiny.onnx', import.meta.url));

// The same constants as make_tiny_onnx.py.
const W = [
  [0.5, -1.0],
  [0.25, 2.0],
  [-0.75, 0.0],
];
const B = [0.1, -0.2];

function reference(row: number[]): { logits: number[]; prob: number[] } {
  const logits = [0, 1].map((j) => row.reduce((acc, xi, i) => acc + xi * W[i]![j]!, B[j]!));
  return { logits, prob: logits.map((z) => 1 / (1 + Math.exp(-z))) };
}

describe('onnxruntime-node smoke', () => {
  let session: ort.InferenceSession;

  beforeAll(async () => {
    session = await ort.InferenceSession.create(MODEL, { executionProviders: ['cpu'] });
  });

  afterAll(async () => {
    await session?.release();
  });

  it('loads the graph with the expected inputs and outputs', () => {
    expect(session.inputNames).toEqual(['x']);
    expect(session.outputNames).toEqual(['logits', 'prob']);
  });

  it('computes x·W + b and its sigmoid', async () => {
    const rows = [
      [1, 2, 3],
      [0, 0, 0],
      [-1, 0.5, 4],
    ];
    const x = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 3]);
    const out = await session.run({ x });

    const logits = out.logits!;
    const prob = out.prob!;
    expect(logits.type).toBe('float32');
    expect(logits.dims).toEqual([3, 2]);
    expect(prob.dims).toEqual([3, 2]);

    // Hand-checked values for the first row: [1,2,3]·W + b = [-1.15, 2.8].
    const l = logits.data as Float32Array;
    const p = prob.data as Float32Array;
    expect(l[0]).toBeCloseTo(-1.15, 5);
    expect(l[1]).toBeCloseTo(2.8, 5);
    expect(p[0]).toBeCloseTo(0.2404891, 5);
    expect(p[1]).toBeCloseTo(0.9426758, 5);

    rows.forEach((row, r) => {
      const ref = reference(row);
      for (let j = 0; j < 2; j++) {
        expect(l[r * 2 + j]).toBeCloseTo(ref.logits[j]!, 5);
        expect(p[r * 2 + j]).toBeCloseTo(ref.prob[j]!, 5);
      }
    });
  });

  it('handles a batch of one and a larger batch', async () => {
    const batch = 64;
    const data = Float32Array.from({ length: batch * 3 }, (_, i) => ((i % 7) - 3) / 2);
    const out = await session.run({ x: new ort.Tensor('float32', data, [batch, 3]) });
    expect(out.prob!.dims).toEqual([batch, 2]);
    const p = out.prob!.data as Float32Array;
    for (let r = 0; r < batch; r++) {
      const ref = reference(Array.from(data.subarray(r * 3, r * 3 + 3)));
      expect(p[r * 2]).toBeCloseTo(ref.prob[0]!, 5);
      expect(p[r * 2 + 1]).toBeCloseTo(ref.prob[1]!, 5);
    }

    const one = await session.run({ x: new ort.Tensor('float32', Float32Array.of(0, 0, 0), [1, 3]) });
    expect(Array.from(one.prob!.data as Float32Array)).toEqual([
      expect.closeTo(1 / (1 + Math.exp(-0.1)), 6),
      expect.closeTo(1 / (1 + Math.exp(0.2)), 6),
    ]);
  });
});
