import type { Member } from '../domain/models/manifest.js';

/** One loaded ensemble member. Implementations: onnxruntime-node; a fake in tests. */
export interface MemberSession {
  /** `rows` feature vectors of `width` float32 values each, row-major → P(fraud) per row. */
  run(input: Float32Array, rows: number, width: number): Promise<Float32Array>;
  /** Input and output names and static shapes as the file declares them, to check against the manifest. */
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  release(): Promise<void>;
}

export interface ModelRuntime {
  load(bytes: Uint8Array, member: Member): Promise<MemberSession>;
}
