import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CompiledFeatureSet } from '../../domain/features/engine.js';
import { compileCombiner } from '../../domain/models/ensemble.js';
import { type LoadFailure, ModelLoadError } from '../../domain/models/load-error.js';
import { type Manifest, ManifestSchema, type Member } from '../../domain/models/manifest.js';
import { MODEL_NAME, MODEL_VERSION } from '../../domain/models/names.js';
import {
  checkFeatures,
  checkGolden,
  checkProbabilities,
  goldenBatch,
  VerifyError,
  warmupBatch,
} from '../../domain/models/verify.js';
import { describeProblems, problemsOf } from '../../domain/problems.js';
import type { MemberSession, ModelRuntime } from '../../ports/model-runtime.js';
import type { ModelSource, VerifiedVersion } from '../../ports/model-source.js';

export interface FsModelRepositoryOptions {
  /** MODEL_DIR: `<dir>/<name>/<version>/{manifest.json, *.onnx}`. */
  readonly dir: string;
  readonly runtime: ModelRuntime;
  readonly featureSets: ReadonlyMap<string, CompiledFeatureSet>;
  /** Batch sizes run once after verification so first requests do not pay for first-run allocations. */
  readonly warmupBatchSizes?: readonly number[];
}

const MANIFEST = 'manifest.json';

/**
 * Model versions on disk. A version folder counts only once its manifest.json exists: publishers write it last by
 * atomic rename, so a folder without one is still being written and is ignored.
 */
export class FsModelRepository implements ModelSource {
  constructor(private readonly options: FsModelRepositoryOptions) {}

  async list(): Promise<ReadonlyMap<string, readonly string[]>> {
    const out = new Map<string, string[]>();
    for (const name of (await dirs(this.options.dir)).filter((n) => MODEL_NAME.test(n)).sort()) {
      const versions: string[] = [];
      for (const v of await dirs(join(this.options.dir, name)))
        if (MODEL_VERSION.test(v) && (await isFile(join(this.options.dir, name, v, MANIFEST))))
          versions.push(v);
      if (versions.length > 0)
        out.set(
          name,
          versions.sort((a, b) => Number(a) - Number(b)),
        );
    }
    return out;
  }

  async readManifest(name: string, version: string): Promise<Manifest> {
    const fail = failer(name, version);
    if (!MODEL_NAME.test(name))
      throw fail('invalid_reference', `model name ${JSON.stringify(name)} is not valid`);
    if (!MODEL_VERSION.test(version))
      throw fail('invalid_reference', `version ${JSON.stringify(version)} is not a positive integer`);
    const path = join(this.options.dir, name, version, MANIFEST);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isNotFound(err)) throw fail('not_found', `${path} does not exist (missing or still being written)`);
      throw fail('not_found', `cannot read ${path}: ${messageOf(err)}`, err);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw fail('manifest_invalid', `${MANIFEST} is not JSON: ${messageOf(err)}`, err);
    }
    const parsed = ManifestSchema.safeParse(json);
    if (!parsed.success) {
      throw fail('manifest_invalid', `${MANIFEST} is invalid: ${describeProblems(problemsOf(parsed.error))}`);
    }
    const m = parsed.data;
    if (m.name !== name || m.version !== version)
      throw fail('manifest_invalid', `${MANIFEST} describes ${m.name}@${m.version}, not ${name}@${version}`);
    return m;
  }

  /** Every check, in order of cost; the first failure is thrown as a ModelLoadError and nothing stays loaded. */
  async load(name: string, version: string): Promise<VerifiedVersion> {
    const fail = failer(name, version);
    const manifest = await this.readManifest(name, version);
    let featureSet: CompiledFeatureSet;
    let combine: ReturnType<typeof compileCombiner>;
    try {
      featureSet = checkFeatures(manifest, this.options.featureSets);
      combine = compileCombiner(manifest);
    } catch (err) {
      throw err instanceof VerifyError
        ? fail(err.code, err.message)
        : fail('manifest_invalid', messageOf(err));
    }
    const folder = join(this.options.dir, name, version);
    const files = await Promise.all(manifest.members.map((m) => readMember(folder, m, fail)));
    const sessions: MemberSession[] = [];
    try {
      for (const [i, member] of manifest.members.entries()) {
        try {
          sessions.push(await this.options.runtime.load(files[i]!, member));
        } catch (err) {
          throw fail('onnx_load_failed', `cannot load ${member.file}: ${messageOf(err)}`, err);
        }
        checkNames(member, sessions[i]!, fail);
      }
      await this.verify(manifest, sessions, combine, fail);
      return { manifest, featureSet, sessions };
    } catch (err) {
      await Promise.allSettled(sessions.map((s) => s.release()));
      throw err;
    }
  }

  private async verify(
    manifest: Manifest,
    sessions: readonly MemberSession[],
    combine: ReturnType<typeof compileCombiner>,
    fail: Failer,
  ): Promise<void> {
    const width = manifest.inputs.length;
    const members = manifest.members;
    // A run that throws on inputs the manifest describes means the file and the manifest disagree on shapes.
    const run = async (rows: Float32Array, count: number, what: string) =>
      Promise.all(
        sessions.map(async (s, i) => {
          try {
            return await s.run(rows, count, width);
          } catch (err) {
            throw fail(
              'io_mismatch',
              `member ${members[i]!.name} cannot score ${what}: ${messageOf(err)}`,
              err,
            );
          }
        }),
      );
    const golden = await run(goldenBatch(manifest), manifest.golden.length, 'the golden examples');
    try {
      golden.forEach((out, i) => {
        if (out.length !== manifest.golden.length)
          throw new VerifyError(
            'golden_mismatch',
            `member ${members[i]!.name} returned ${out.length} scores for ${manifest.golden.length} golden examples`,
          );
      });
      checkGolden(manifest, golden, combine);
      for (const size of this.options.warmupBatchSizes ?? [1, 8, 32]) {
        const outputs = await run(warmupBatch(manifest, size), size, `a warm-up batch of ${size}`);
        outputs.forEach((out, i) => {
          checkProbabilities(members[i]!.name, out, size);
        });
      }
    } catch (err) {
      if (err instanceof VerifyError) throw fail(err.code, err.message);
      throw err;
    }
  }
}

type Failer = (code: LoadFailure, reason: string, cause?: unknown) => ModelLoadError;

function failer(name: string, version: string): Failer {
  return (code, reason, cause) => new ModelLoadError(code, reason, name, version, { cause });
}

async function readMember(folder: string, member: Member, fail: Failer): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(folder, member.file));
  } catch (err) {
    throw fail('missing_file', `cannot read ${member.file}: ${messageOf(err)}`, err);
  }
  const got = createHash('sha256').update(bytes).digest('hex');
  if (got !== member.sha256)
    throw fail(
      'checksum_mismatch',
      `checksum mismatch for ${member.file}: expected ${member.sha256}, got ${got}`,
    );
  return bytes;
}

function checkNames(member: Member, session: MemberSession, fail: Failer): void {
  const inputs = session.inputNames;
  if (inputs.length !== 1)
    throw fail(
      'io_mismatch',
      `${member.file} takes ${inputs.length} inputs (${quoted(inputs)}); a member takes exactly one`,
    );
  if (inputs[0] !== member.input_name)
    throw fail(
      'io_mismatch',
      `${member.file} has input "${inputs[0]}", manifest says "${member.input_name}"`,
    );
  if (!session.outputNames.includes(member.output_name))
    throw fail(
      'io_mismatch',
      `${member.file} has no output "${member.output_name}" (outputs: ${quoted(session.outputNames)})`,
    );
}

async function dirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function quoted(names: readonly string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
