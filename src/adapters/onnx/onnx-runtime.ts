import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { Member } from '../../domain/models/manifest.js';
import type { MemberSession, ModelRuntime } from '../../ports/model-runtime.js';

export interface OnnxRuntimeOptions {
  /** Threads inside one operator. 1 suits the small batches of online scoring; more only adds hand-off cost. */
  readonly intraOpNumThreads: number;
}

/** onnxruntime-node 1.30. `run()` computes synchronously on the main thread after one setImmediate hop. */
export class OnnxModelRuntime implements ModelRuntime {
  constructor(private readonly options: OnnxRuntimeOptions = { intraOpNumThreads: 1 }) {}

  async load(bytes: Uint8Array, member: Member): Promise<MemberSession> {
    const session = await InferenceSession.create(bytes, {
      intraOpNumThreads: this.options.intraOpNumThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // The Node binding flattens nested keys with dots: this is the session config entry
      // session.intra_op.allow_spinning. Spinning workers would burn a core between requests.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const problem = outputProblem(session.outputMetadata, member);
    if (problem) {
      await session.release();
      throw new Error(problem);
    }
    return new OnnxMemberSession(session, member);
  }
}

class OnnxMemberSession implements MemberSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private readonly fetches: string[];
  private released: Promise<void> | undefined;

  constructor(
    private readonly session: InferenceSession,
    private readonly member: Member,
  ) {
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    this.fetches = [member.output_name];
  }

  async run(input: Float32Array, rows: number, width: number): Promise<Float32Array> {
    if (input.length !== rows * width)
      throw new RangeError(`input holds ${input.length} values, expected ${rows} × ${width}`);
    const feeds = { [this.member.input_name]: new Tensor('float32', input, [rows, width]) };
    const out = await this.session.run(feeds, this.fetches);
    const t = out[this.member.output_name];
    if (!t) throw new Error(`no output ${this.member.output_name}`);
    if (!(t.data instanceof Float32Array))
      throw new Error(`output ${this.member.output_name} is ${t.type}, expected float32`);
    return positiveClass(t.data, t.dims, rows, this.member);
  }

  release(): Promise<void> {
    this.released ??= this.session.release();
    return this.released;
  }
}

function positiveClass(
  data: Float32Array,
  dims: readonly number[],
  rows: number,
  member: Pick<Member, 'output_name' | 'output_index'>,
): Float32Array {
  const k = member.output_index;
  if (k === null) {
    const ok = dims[0] === rows && (dims.length === 1 || (dims.length === 2 && dims[1] === 1));
    if (!ok)
      throw new Error(
        `output ${member.output_name} has shape [${dims.join(', ')}], expected [${rows}] or [${rows}, 1] (output_index is null)`,
      );
    return data;
  }
  const columns = dims[1] ?? 0;
  if (dims.length !== 2 || dims[0] !== rows || k >= columns)
    throw new Error(
      `output ${member.output_name} has shape [${dims.join(', ')}], expected [${rows}, >${k}] (output_index is ${k})`,
    );
  const p = new Float32Array(rows);
  for (let r = 0; r < rows; r++) p[r] = data[r * columns + k]!;
  return p;
}

/** What the file declares about the output, checked before any run; symbolic dimensions pass. */
function outputProblem(
  outputs: readonly InferenceSession.ValueMetadata[],
  member: Pick<Member, 'output_name' | 'output_index'>,
): string | undefined {
  const o = outputs.find((x) => x.name === member.output_name);
  if (!o) return undefined;
  if (!o.isTensor)
    return `output "${o.name}" is not a tensor (export classifiers without ZipMap, e.g. zipmap=False)`;
  if (o.type !== 'float32') return `output "${o.name}" is ${o.type}, expected float32`;
  const shape = o.shape;
  const shown = `[${shape.join(', ')}]`;
  const k = member.output_index;
  const last = shape.at(-1);
  if (k === null) {
    if (shape.length > 2 || (shape.length === 2 && typeof last === 'number' && last !== 1))
      return `output "${o.name}" is ${shown}; output_index null needs [N] or [N, 1]`;
  } else if (shape.length !== 2 || (typeof last === 'number' && k >= last))
    return `output "${o.name}" is ${shown}; output_index ${k} needs [N, C] with C > ${k}`;
  return undefined;
}
