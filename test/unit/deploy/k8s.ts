/**
 * Offline Kubernetes checks for test/unit/deploy: render with the pinned kustomize (scripts/kustomize.sh) and
 * validate every object against the Kubernetes / Prometheus Operator OpenAPI schemas shipped in the
 * kubernetes-models packages. No cluster, no network (after the first kustomize build).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import {
  ConfigMap,
  type IContainer,
  type IPodSpec,
  Namespace,
  PersistentVolumeClaim,
  Secret,
  Service,
  ServiceAccount,
} from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';

export const ROOT = new URL('../../../', import.meta.url).pathname;
const run = promisify(execFile);

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

/** Runs scripts/kustomize.sh (which builds the pinned kustomize on first use) with `args`. */
export async function kustomize(args: readonly string[]): Promise<string> {
  const { stdout } = await run('bash', [`${ROOT}scripts/kustomize.sh`, ...args], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

export async function render(dir: string): Promise<K8sObject[]> {
  return parseYamlStream(await kustomize(['build', dir]));
}

export function parseYamlStream(text: string): K8sObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    return value === null ? [] : [value];
  });
}

type Validating = new (data: never) => { validate(): void };

/** Every kind the manifests may contain, by apiVersion/kind. Anything else is an error, not a silent pass. */
const SCHEMAS: Record<string, Validating> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.k8s.io/v1/Ingress': Ingress,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Problems with one object: the OpenAPI schema (types, required fields, formats such as quantities), plus what
 * the API server would reject but the schema leaves open (a container without an image, a bad object name).
 */
export function validateObject(o: K8sObject): string[] {
  const key = `${o?.apiVersion}/${o?.kind}`;
  const Model = SCHEMAS[key];
  const where = `${key} ${o?.metadata?.name ?? '(no name)'}`;
  if (!Model) return [`${where}: no schema for this kind (add it to SCHEMAS if it is intended)`];
  const problems: string[] = [];
  try {
    new Model(o as never).validate();
  } catch (err) {
    problems.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof o.metadata?.name !== 'string' || o.metadata.name.length > 253 || !NAME.test(o.metadata.name)) {
    problems.push(`${where}: metadata.name must be a DNS-1123 name`);
  }
  const pod = podSpecOf(o);
  for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
    if (typeof c.image !== 'string' || c.image.trim() === '')
      problems.push(`${where}: container ${c.name} has no image`);
  }
  return problems;
}

type Templated = { spec?: { template?: { spec?: IPodSpec } } };

/** The pod template's spec of a Deployment, Job or CronJob. */
export function podSpecOf(o: K8sObject): IPodSpec | undefined {
  if (o.kind === 'CronJob')
    return (o as unknown as { spec?: { jobTemplate?: Templated } }).spec?.jobTemplate?.spec?.template?.spec;
  if (o.kind !== 'Deployment' && o.kind !== 'Job') return undefined;
  return (o as unknown as Templated).spec?.template?.spec;
}

/** The pod template's labels of a Deployment, Job or CronJob. */
export function podLabelsOf(o: K8sObject): Record<string, string> | undefined {
  type Meta = { template?: { metadata?: { labels?: Record<string, string> } } };
  if (o.kind === 'CronJob')
    return (o as unknown as { spec?: { jobTemplate?: { spec?: Meta } } }).spec?.jobTemplate?.spec?.template
      ?.metadata?.labels;
  return (o as unknown as { spec?: Meta }).spec?.template?.metadata?.labels;
}

export function containersOf(o: K8sObject): IContainer[] {
  return podSpecOf(o)?.containers ?? [];
}

export const byKind = (objects: readonly K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);

export function one(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0]!;
}

/** True when every key/value of `selector` is in `labels` (a matchLabels-only selector; ours use no expressions). */
export function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
) {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** A Kubernetes quantity in base units (cores, bytes). Enough of the grammar for resources: m, k/M/G, Ki/Mi/Gi. */
export function quantity(q: string | number | undefined): number {
  if (q === undefined) return Number.NaN;
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) return Number.NaN;
  const scale: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(m[1]) * (m[2] ? scale[m[2]]! : 1);
}
