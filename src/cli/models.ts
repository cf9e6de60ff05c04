import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ModelLoadError } from '../domain/models/load-error.js';
import { MODEL_NAME, MODEL_VERSION } from '../domain/models/names.js';
import type { ModelStatus, VersionStatus } from '../domain/models/status.js';
import { featureSetsFrom, offlineModelRegistry } from '../wiring/jobs.js';
import { UsageError } from './usage.js';

export const help = `fraudscore models <command> [options]

On disk:
  list [--dir <models>] [--json]         versions per model with manifest summary and evaluation
  validate <version-folder>              the full load pipeline (schema, checksums, ONNX names, golden
                                         examples, warm-up); exit 1 with the reason when refused

Against a running service (admin API; needs ADMIN_TOKEN in the environment):
  status                                 roles, states, in-flight requests and failures
  activate <version>                     serve <version>; the current one becomes the rollback target
  rollback                               restore the rollback target
  canary <version> <percent>             send <percent> of customers (sticky) to <version>
  canary --clear
  shadow <version>                       also score every request with <version>, for comparison only
  shadow --clear

Options:
  --dir <dir>            model directory (default MODEL_DIR or models)
  --feature-dir <dir>    feature set definitions, for validate (default FEATURE_DIR or features)
  --url <url>            the service (default http://localhost:8080)
  --model <name>         model name (default MODEL_NAME or fraudscore)
  --json                 print JSON instead of text
  --override --reason <text>
                         activate / canary a version its model card refuses (gate rejected, or no card with
                         REQUIRE_MODEL_CARD): the service logs it as an audit event with the reason`;

interface Options {
  readonly dir: string;
  readonly featureDir: string;
  readonly url: string;
  readonly model: string;
  readonly clear: boolean;
  readonly json: boolean;
  readonly override?: string;
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string', default: process.env.MODEL_DIR || 'models' },
      'feature-dir': { type: 'string', default: process.env.FEATURE_DIR || 'features' },
      url: { type: 'string', default: 'http://localhost:8080' },
      model: { type: 'string', default: process.env.MODEL_NAME || 'fraudscore' },
      clear: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      override: { type: 'boolean', default: false },
      reason: { type: 'string' },
    },
  });
  if (values.override && !values.reason?.trim())
    throw new UsageError('--override needs --reason <why>', help);
  const o: Options = {
    dir: values.dir,
    featureDir: values['feature-dir'],
    url: values.url,
    model: values.model,
    clear: values.clear,
    json: values.json,
    ...(values.override ? { override: values.reason!.trim() } : {}),
  };
  const [command, ...args] = positionals;
  const arity = (n: number, usage: string) => {
    if (args.length !== n) throw new UsageError(`usage: fraudscore models ${usage}`, help);
  };
  switch (command) {
    case 'list':
      arity(0, 'list [--dir <models>]');
      return list(o);
    case 'validate':
      arity(1, 'validate <version-folder>');
      return validate(args[0]!, o);
    case 'status':
      arity(0, 'status --url <url>');
      return show(o, await admin(o, 'GET', '/admin/models'));
    case 'activate':
      arity(1, 'activate <version> --url <url>');
      return change(o, 'POST', 'activate', { version: version(args[0]!) });
    case 'rollback':
      arity(0, 'rollback --url <url>');
      return change(o, 'POST', 'rollback');
    case 'canary':
      if (o.clear) {
        arity(0, 'canary --clear');
        return change(o, 'DELETE', 'canary');
      }
      arity(2, 'canary <version> <percent> | canary --clear');
      return change(o, 'PUT', 'canary', { version: version(args[0]!), percent: percent(args[1]!) });
    case 'shadow':
      if (o.clear) {
        arity(0, 'shadow --clear');
        return change(o, 'DELETE', 'shadow');
      }
      arity(1, 'shadow <version> | shadow --clear');
      return change(o, 'PUT', 'shadow', { version: version(args[0]!) });
    default:
      throw new UsageError(command ? `unknown models command: ${command}` : 'models needs a command', help);
  }
}

function version(v: string): string {
  if (!MODEL_VERSION.test(v)) throw new UsageError(`version must be a positive integer, got ${v}`, help);
  return v;
}

function percent(p: string): number {
  const n = Number(p.replace(/%$/, ''));
  if (!(n > 0 && n <= 100)) throw new UsageError(`percent must be in (0, 100], got ${p}`, help);
  return n;
}

/** A refusal is the expected outcome of a check, not a crash: the reason on stderr and exit code 1. */
function refuse(message: string): void {
  process.stderr.write(`${message}\n`);
  process.exitCode = 1;
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function featureSetsIn(dir: string): ReturnType<typeof featureSetsFrom> {
  try {
    return featureSetsFrom(dir);
  } catch (err) {
    throw new UsageError(`cannot read feature sets from ${dir}: ${(err as Error).message}`, help);
  }
}

async function list(o: Options): Promise<void> {
  const registry = offlineModelRegistry(o.dir, new Map(), o.model);
  const models = await registry.list();
  if (o.json) return out(JSON.stringify({ dir: o.dir, models }, null, 2));
  if (models.length === 0) return out(`no model versions in ${o.dir}`);
  for (const m of models) {
    out(`${m.name} (${join(o.dir, m.name)})`);
    for (const v of m.versions) out(`  ${versionLine(v, false)}`);
  }
}

async function validate(path: string, o: Options): Promise<void> {
  const featureSets = featureSetsIn(o.featureDir);
  const folder = resolve(path);
  let manifest: { name?: unknown; version?: unknown };
  try {
    manifest = JSON.parse(await readFile(join(folder, 'manifest.json'), 'utf8'));
  } catch (err) {
    return refuse(`refused ${path}: cannot read manifest.json: ${(err as Error).message}`);
  }
  // Names from a manifest that fails validation only locate it; the schema check then reports the problem.
  const name = typeof manifest.name === 'string' && MODEL_NAME.test(manifest.name) ? manifest.name : 'model';
  const ver =
    typeof manifest.version === 'string' && MODEL_VERSION.test(manifest.version)
      ? manifest.version
      : MODEL_VERSION.test(basename(folder))
        ? basename(folder)
        : '1';
  // The repository reads <dir>/<name>/<version>; a folder elsewhere (a training output) is linked into that shape.
  const inPlace = basename(folder) === ver && basename(dirname(folder)) === name;
  const tmp = inPlace ? undefined : await mkdtemp(join(tmpdir(), 'fraudscore-validate-'));
  try {
    if (tmp) {
      await mkdir(join(tmp, name));
      await symlink(folder, join(tmp, name, ver), 'dir');
    }
    const registry = offlineModelRegistry(tmp ?? dirname(dirname(folder)), featureSets, name);
    try {
      const started = performance.now();
      const lv = await registry.load(name, ver);
      const m = lv.manifest;
      const ms = Math.round(performance.now() - started);
      if (o.json) return out(JSON.stringify({ ok: true, model: m.name, version: m.version, ms }));
      out(
        `ok ${lv.id}: schema, checksums, ONNX names, ${m.golden.length} golden examples and warm-up passed ` +
          `(members ${m.members.map((x) => x.name).join(', ')}; feature set ${lv.featureSet.id}; ${ms} ms)`,
      );
    } catch (err) {
      if (!(err instanceof ModelLoadError)) throw err;
      if (o.json)
        process.stdout.write(`${JSON.stringify({ ok: false, code: err.code, reason: err.reason })}\n`);
      refuse(`refused ${path} (${err.code}): ${err.reason}`);
    } finally {
      await registry.close();
    }
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

async function change(o: Options, method: string, action: string, body?: object): Promise<void> {
  const query =
    o.override && (action === 'activate' || (action === 'canary' && method === 'PUT'))
      ? `?${new URLSearchParams({ override: 'true', reason: o.override })}`
      : '';
  const status = await admin(
    o,
    method,
    `/admin/models/${encodeURIComponent(o.model)}/${action}${query}`,
    body,
  );
  if (status !== undefined) show(o, { models: [status] });
}

async function admin(o: Options, method: string, path: string, body?: object): Promise<unknown> {
  const token = process.env.ADMIN_TOKEN;
  if (!token) throw new UsageError('set ADMIN_TOKEN in the environment to use the admin API', help);
  let url: URL;
  try {
    url = new URL(path, o.url);
  } catch {
    throw new UsageError(`--url must be an http(s) URL, got ${o.url}`, help);
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    refuse(`cannot reach ${o.url}: ${cause?.message ?? (err as Error).message}`);
    return undefined;
  }
  const json = (await res.json().catch(() => undefined)) as
    | { error?: { code?: string; message?: string } }
    | undefined;
  if (!res.ok) {
    refuse(`refused (${res.status} ${json?.error?.code ?? ''}): ${json?.error?.message ?? res.statusText}`);
    return undefined;
  }
  return json;
}

function show(o: Options, body: unknown): void {
  if (body === undefined) return;
  if (o.json) {
    out(JSON.stringify(body, null, 2));
    return;
  }
  const models = ((body as { models?: ModelStatus[] }).models ?? []).filter((m) => m.name === o.model);
  if (models.length === 0) refuse(`the service has no model named ${o.model}`);
  for (const m of models) {
    const roles = [
      `active ${m.active ?? 'none'}`,
      m.previous && `rollback target ${m.previous}`,
      m.canary && `canary ${m.canary.version} at ${m.canary.percent}%`,
      m.shadow && `shadow ${m.shadow.version}`,
    ].filter(Boolean);
    out(`${m.name}: ${roles.join(', ')}`);
    for (const v of m.versions) out(`  ${versionLine(v, true)}`);
  }
}

function versionLine(v: VersionStatus, live: boolean): string {
  const parts = [v.version.padStart(4)];
  if (live) {
    const state = v.state === 'canary' ? `canary ${v.canaryPercent}%` : v.state;
    parts.push(state.padEnd(11));
    if (v.inFlight) parts.push(`in-flight ${v.inFlight}`);
  }
  if (v.manifestError) parts.push(`invalid manifest: ${v.manifestError}`);
  if (v.featureSet) parts.push(v.featureSet);
  if (v.gate && v.gate !== 'none') parts.push(`gate ${v.gate}`);
  if (v.createdAt) parts.push(`created ${v.createdAt}`);
  const evaluation = Object.entries(v.evaluation ?? {})
    .filter(([, x]) => typeof x === 'number')
    .map(([k, x]) => `${k}=${Number((x as number).toPrecision(4))}`);
  if (evaluation.length) parts.push(evaluation.join(' '));
  if (v.description) parts.push(`— ${v.description}`);
  if (!v.onDisk) parts.push('(no longer on disk)');
  if (v.failure) parts.push(`FAILED ${v.failure.code}: ${v.failure.reason}`);
  return parts.join('  ');
}
