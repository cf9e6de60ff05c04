/**
 * The Open Inference Protocol ("V2", KServe/Triton) over REST, as fraudscore speaks it for model versions: the
 * request and response bodies, and the tensor codec between them and model-input rows.
 *
 * Inputs, either form (FP32; FP64 is accepted and rounded to float32, as the model takes it):
 * - one tensor `input` of shape [n, inputs], its columns in the version's manifest input order (model metadata
 *   lists them in the tensor's `parameters.columns`);
 * - one tensor per model input, named after it, of shape [n] or [n, 1].
 * Data is row-major, flat or nested ([[…], …]). Outputs, each of shape [n]: `score` (FP64, the ensemble score, as
 * /v1/score returns it) and `member_<name>` (FP32) per ensemble member.
 */
import { z } from 'zod';
import { ServiceError } from '../domain/errors.js';
import type { Problem } from '../domain/problems.js';

export const INPUT_TENSOR = 'input';
export const SCORE_TENSOR = 'score';
export const memberTensor = (member: string) => `member_${member}`;
export const PLATFORM = 'onnx_onnxv1';

const Parameters = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
  .describe('Key/value pairs; values are strings, numbers or booleans');
const Shape = z.array(z.number().int().min(0)).min(1).max(2);
const TensorData = z
  .array(z.union([z.number(), z.array(z.number())]))
  .describe('Tensor elements in row-major order, flat or nested one level per row');

const inferRequest = <D extends z.ZodType>(data: D) =>
  z.object({
    id: z.string().optional().describe('Returned in the response'),
    parameters: Parameters.optional(),
    inputs: z
      .array(
        z.object({
          name: z.string().min(1),
          shape: Shape,
          datatype: z.string().describe('FP32 (FP64 is accepted and rounded to float32)'),
          parameters: Parameters.optional(),
          data,
        }),
      )
      .min(1),
    outputs: z
      .array(z.object({ name: z.string().min(1), parameters: Parameters.optional() }))
      .optional()
      .describe('The outputs to return; all of them when absent'),
  });

/** The request as documented. */
export const InferRequestSchema = inferRequest(TensorData);
/** The request as parsed: tensor elements are checked by `decodeRows`, against the tensor's type and shape, with every other problem. */
export const InferRequestEnvelope = inferRequest(z.array(z.unknown()));
export type InferRequest = z.infer<typeof InferRequestEnvelope>;
export type InferInput = InferRequest['inputs'][number];

const MetadataTensor = z.object({
  name: z.string(),
  datatype: z.string(),
  shape: z.array(z.number().int()).describe('-1: any size'),
  parameters: Parameters.optional(),
});

export const ModelMetadataSchema = z.object({
  name: z.string(),
  versions: z.array(z.string()).describe('The loaded versions, which /versions/{version} can name'),
  platform: z.string(),
  inputs: z.array(MetadataTensor),
  outputs: z.array(MetadataTensor),
  parameters: Parameters.optional(),
});

export const InferResponseSchema = z.object({
  model_name: z.string(),
  model_version: z.string(),
  id: z.string().describe("The request's id, or the HTTP request id when it gave none"),
  parameters: Parameters.optional(),
  outputs: z.array(
    z.object({
      name: z.string(),
      shape: z.array(z.number().int()),
      datatype: z.string(),
      data: z.array(z.number()),
    }),
  ),
});

export const ServerMetadataSchema = z.object({
  name: z.string(),
  version: z.string(),
  extensions: z.array(z.string()),
});

/** The protocol's error body: a message (fraudscore's code first); the status is the catalogue's. */
export const OipErrorSchema = z.object({ error: z.string() });

/** What a version looks like on the protocol's side. */
export interface TensorModel {
  /** `manifest.inputs`, in order. */
  readonly inputs: readonly string[];
  /** Ensemble members, in manifest order. */
  readonly members: readonly string[];
}

export function outputNames(m: TensorModel): string[] {
  return [SCORE_TENSOR, ...m.members.map(memberTensor)];
}

export function metadataTensors(m: TensorModel) {
  return {
    inputs: [
      {
        name: INPUT_TENSOR,
        datatype: 'FP32',
        shape: [-1, m.inputs.length],
        parameters: { columns: m.inputs.join(',') },
      },
    ],
    outputs: [
      { name: SCORE_TENSOR, datatype: 'FP64', shape: [-1] },
      ...m.members.map((member) => ({ name: memberTensor(member), datatype: 'FP32', shape: [-1] })),
    ],
  };
}

const invalid = (problems: readonly Problem[]) =>
  new ServiceError('invalid_request', `${problems.length} problem(s) in the request`, problems);

/**
 * The request's inputs as model-input rows (float32, `m.inputs` order, at most `maxRows` of them) and the output
 * names it asks for (all when it names none); throws `invalid_request` listing every problem of both.
 */
export function decodeRequest(
  m: TensorModel,
  req: InferRequest,
  maxRows: number,
): { rows: Float32Array[]; outputs: string[] } {
  const problems: Problem[] = [];
  const all = outputNames(m);
  (req.outputs ?? []).forEach((o, i) => {
    if (!all.includes(o.name))
      problems.push({
        path: `outputs.${i}.name`,
        message: `no output ${o.name}; the outputs are ${all.join(', ')}`,
      });
  });
  const rows = decodeRows(m, req.inputs, maxRows, problems);
  if (problems.length) throw invalid(problems);
  return { rows, outputs: req.outputs ? [...new Set(req.outputs.map((o) => o.name))] : all };
}

/** The inputs as rows; what is wrong goes to `problems` (the rows are then meaningless). */
function decodeRows(
  m: TensorModel,
  inputs: readonly InferInput[],
  maxRows: number,
  problems: Problem[],
): Float32Array[] {
  const start = problems.length;
  const width = m.inputs.length;
  const tensors = inputs.map((t, i) => tensorValues(t, `inputs.${i}`, problems));
  let rows: Float32Array[] = [];
  const n = inputs[0]!.shape[0]!;
  if (inputs.length === 1 && inputs[0]!.name === INPUT_TENSOR) {
    const t = inputs[0]!;
    if (t.shape.length !== 2 || t.shape[1] !== width)
      problems.push({
        path: 'inputs.0.shape',
        message: `must be [n, ${width}] (${width} inputs per row), got [${t.shape.join(', ')}]`,
      });
    const values = tensors[0];
    if (values && problems.length === start)
      rows = Array.from({ length: n }, (_, r) => values.slice(r * width, (r + 1) * width));
  } else {
    const at = new Map<string, number>();
    inputs.forEach((t, i) => {
      const path = `inputs.${i}`;
      if (!m.inputs.includes(t.name))
        problems.push({
          path: `${path}.name`,
          message: `${t.name} is not an input of this model: send "${INPUT_TENSOR}" [n, ${width}], or one tensor per input (${m.inputs.join(', ')})`,
        });
      else if (at.has(t.name)) problems.push({ path: `${path}.name`, message: `${t.name} appears twice` });
      else at.set(t.name, i);
      const [rowsOf, one = 1] = t.shape;
      if (one !== 1 || rowsOf !== n)
        problems.push({
          path: `${path}.shape`,
          message: `must be [${n}] or [${n}, 1] (one value per row, as many rows as inputs.0), got [${t.shape.join(', ')}]`,
        });
    });
    const missing = m.inputs.filter((name) => !at.has(name));
    if (missing.length && problems.length === start)
      problems.push({ path: 'inputs', message: `missing ${missing.join(', ')}` });
    if (problems.length === start) {
      const columns = m.inputs.map((name) => tensors[at.get(name)!]!);
      rows = Array.from({ length: n }, (_, r) => Float32Array.from(columns, (c) => c[r]!));
    }
  }
  if (problems.length === start && (n < 1 || n > maxRows))
    problems.push({ path: 'inputs.0.shape', message: `must hold 1 to ${maxRows} rows, got ${n}` });
  return rows;
}

/** A tensor's elements as float32, flattened; undefined (with problems) when they do not fit its shape and type. */
function tensorValues(t: InferInput, path: string, problems: Problem[]): Float32Array | undefined {
  const before = problems.length;
  if (t.datatype !== 'FP32' && t.datatype !== 'FP64')
    problems.push({ path: `${path}.datatype`, message: `must be FP32 (or FP64), got ${t.datatype}` });
  const bad = t.data.findIndex((v) =>
    Array.isArray(v) ? v.some((x) => typeof x !== 'number') : typeof v !== 'number',
  );
  if (bad >= 0) {
    problems.push({
      path: `${path}.data.${bad}`,
      message: `${JSON.stringify(t.data[bad])}: elements must be numbers (flat, or nested one level per row)`,
    });
    return undefined;
  }
  const nested = t.data.some(Array.isArray);
  if (nested && !t.data.every(Array.isArray))
    problems.push({ path: `${path}.data`, message: 'mixes numbers and arrays: flat or nested, not both' });
  else if (
    nested &&
    (t.shape.length !== 2 ||
      t.data.length !== t.shape[0] ||
      t.data.some((row) => (row as number[]).length !== t.shape[1]))
  )
    problems.push({
      path: `${path}.data`,
      message: `nested data must hold ${t.shape[0]} rows of ${t.shape[1] ?? 1} values, as shape [${t.shape.join(', ')}] says`,
    });
  const flat = nested ? (t.data as number[][]).flat() : (t.data as number[]);
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (flat.length !== size)
    problems.push({
      path: `${path}.data`,
      message: `holds ${flat.length} values, shape [${t.shape.join(', ')}] needs ${size}`,
    });
  if (problems.length > before) return undefined;
  const values = Float32Array.from(flat);
  const k = values.findIndex((v) => !Number.isFinite(v));
  if (k >= 0) {
    problems.push({ path: `${path}.data.${k}`, message: `${flat[k]} is beyond float32 range` });
    return undefined;
  }
  return values;
}

export interface Scored {
  readonly score: number;
  readonly members: readonly number[];
}

/** The response's output tensors, in `names` order. */
export function encodeOutputs(m: TensorModel, results: readonly Scored[], names: readonly string[]) {
  const n = results.length;
  return names.map((name) => {
    if (name === SCORE_TENSOR)
      return { name, datatype: 'FP64', shape: [n], data: results.map((r) => r.score) };
    const k = m.members.findIndex((member) => memberTensor(member) === name);
    return { name, datatype: 'FP32', shape: [n], data: results.map((r) => r.members[k]!) };
  });
}
