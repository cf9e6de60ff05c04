import { describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../../src/adapters/fs/feature-set-files.js';
import { FsModelRepository } from '../../../src/adapters/fs/model-repository.js';
import { OnnxModelRuntime } from '../../../src/adapters/onnx/onnx-runtime.js';

const repo = new FsModelRepository({
  dir: 'models',
  runtime: new OnnxModelRuntime(),
  featureSets: loadFeatureSets('features'),
});
const shipped = [...(await repo.list())].flatMap(([name, versions]) =>
  versions.map((version) => ({ name, version })),
);

describe('shipped models', () => {
  it('ships at least one model version', () => {
    expect(shipped.length).toBeGreaterThan(0);
  });

  // load() checks every member's sha256, the ONNX input and output names, the feature set, and that
  // onnxruntime-node reproduces every golden example (members and ensemble) within 1e-5.
  it.each(shipped)(
    '$name@$version: checksums match and onnxruntime-node reproduces its golden examples',
    async ({ name, version }) => {
      const v = await repo.load(name, version);
      try {
        expect(v.manifest.golden.length).toBeGreaterThanOrEqual(10);
        expect(v.manifest.members.length).toBeGreaterThanOrEqual(3);
        expect(new Set(v.manifest.members.map((m) => m.family)).size).toBeGreaterThanOrEqual(3);
      } finally {
        await Promise.all(v.sessions.map((s) => s.release()));
      }
    },
  );
});
