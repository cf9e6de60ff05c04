/**
 * Deployment artefacts, checked offline: the Dockerfile (hadolint), the kustomize base and overlays (rendered by
 * the real kustomize, every object validated against the Kubernetes and Prometheus Operator schemas), and the
 * invariants that tie the manifests to the code: env var names (src/config.ts), probe paths (src/http/routes),
 * metric names and labels (src/adapters/metrics/metrics.ts).
 *
 * No skips: if kustomize cannot be built (no Go, no module proxy) or hadolint cannot be installed, this fails.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type {
  IPrometheusRule,
  IServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import Fastify from 'fastify';
import type { IDeployment } from 'kubernetes-models/apps/v1';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import type { ICronJob } from 'kubernetes-models/batch/v1';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { IConfigMap, IContainer, IService } from 'kubernetes-models/v1';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, workerObserver } from '../../../src/adapters/metrics/metrics.js';
import { help as retrainHelp } from '../../../src/cli/retrain.js';
import { EnvSchema, loadConfig, OTEL_SDK_ENV } from '../../../src/config.js';
import { healthRoutes } from '../../../src/http/routes/health.js';
import { metricsRoutes } from '../../../src/http/routes/metrics.js';
import type { ScoringService } from '../../../src/ports/scoring.js';
import {
  byKind,
  containersOf,
  type K8sObject,
  kustomize,
  one,
  parseYamlStream,
  podLabelsOf,
  podSpecOf,
  quantity,
  ROOT,
  render,
  selects,
  validateObject,
} from './k8s.js';
import {
  analyse,
  evaluate,
  parseExposition,
  type SeriesCatalog,
  seriesCatalog,
  substituteGrafanaVariables,
} from './promql.js';

const run = promisify(execFile);

const TARGETS = {
  base: 'k8s/base',
  dev: 'k8s/overlays/dev',
  prod: 'k8s/overlays/prod',
} as const;
type Target = keyof typeof TARGETS;
const OVERLAYS = ['dev', 'prod'] as const;

/** The one Secret the manifests reference but never contain outside dev (created out of band, k8s/README.md). */
const EXTERNAL_SECRET = 'fraudscore-admin';
const PARTITIONS_ANNOTATION = 'fraudscore/kafka-partitions';
/** Ours, and the standard OpenTelemetry variables the SDK reads itself when tracing is on. */
const ENV_NAMES = new Set([...Object.keys(EnvSchema.shape), ...OTEL_SDK_ENV]);

const renders = {} as Record<Target, K8sObject[]>;
/** Why kustomize could not build or render: every manifest test then fails with it (never skips). */
let renderError: unknown;
const rendered = (t: Target): K8sObject[] => {
  if (renderError !== undefined) throw renderError;
  return renders[t];
};
let catalog: SeriesCatalog;
/** GET routes the real route plugins register, to check probe and scrape paths against. */
let servedPaths: (path: string) => boolean;
let readyWhileDraining: number;

beforeAll(async () => {
  try {
    // Build kustomize once (≈1 min cold) before rendering in parallel.
    await kustomize(['version']);
    const entries = await Promise.all(
      (Object.keys(TARGETS) as Target[]).map(async (t) => [t, await render(TARGETS[t])] as const),
    );
    for (const [t, objects] of entries) renders[t] = objects;
  } catch (err) {
    renderError = err;
  }
  catalog = await seriesCatalog();

  let draining = false;
  const scoring: ScoringService = {
    score: async () => {
      throw new Error('not used');
    },
    readiness: async () => ({ ready: true, checks: {} }),
  };
  const app = Fastify();
  await app.register(healthRoutes, { scoring, draining: () => draining });
  await app.register(metricsRoutes, { registry: new Registry() });
  await app.ready();
  servedPaths = (path) => app.hasRoute({ method: 'GET', url: path });
  draining = true;
  readyWhileDraining = (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode;
  await app.close();
}, 600_000);

const deployments = (t: Target) => byKind(rendered(t), 'Deployment') as (K8sObject & IDeployment)[];
const api = (t: Target) => one(rendered(t), 'Deployment', 'fraudscore-api') as K8sObject & IDeployment;
const worker = (t: Target) => one(rendered(t), 'Deployment', 'fraudscore-worker') as K8sObject & IDeployment;
const podLabels = (d: K8sObject) => podLabelsOf(d);
/** What runs pods: the Deployments and (prod) the retrain CronJob. */
const workloads = (t: Target) => [...deployments(t), ...byKind(rendered(t), 'CronJob')];

/** The environment a container gets: its envFrom ConfigMaps, then its literal env (valueFrom entries → null). */
function environment(objects: readonly K8sObject[], c: IContainer): Map<string, string | null> {
  const env = new Map<string, string | null>();
  for (const from of c.envFrom ?? []) {
    expect(from.secretRef, 'no envFrom secretRef: secrets go in by key').toBeUndefined();
    const name = from.configMapRef?.name;
    expect(name, 'envFrom configMapRef').toBeTypeOf('string');
    const cm = one(objects, 'ConfigMap', name!) as K8sObject & IConfigMap;
    for (const [k, v] of Object.entries(cm.data ?? {})) env.set(k, v);
  }
  for (const e of c.env ?? []) env.set(e.name, e.valueFrom ? null : (e.value ?? ''));
  return env;
}

describe.each(Object.keys(TARGETS) as Target[])('k8s %s', (target) => {
  const objects = () => rendered(target);

  it('renders, and every object passes its schema', () => {
    expect(objects().length).toBeGreaterThan(5);
    expect(objects().flatMap(validateObject)).toEqual([]);
  });

  it('has no duplicate objects', () => {
    const keys = objects().map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
  });

  it('sets resources, probes where the app serves them, and a restricted security context', () => {
    for (const d of workloads(target)) {
      const pod = podSpecOf(d)!;
      expect(pod.securityContext?.runAsNonRoot, d.metadata.name).toBe(true);
      expect(pod.securityContext?.seccompProfile?.type, d.metadata.name).toBe('RuntimeDefault');
      expect(pod.automountServiceAccountToken, d.metadata.name).toBe(false);
      for (const c of containersOf(d)) {
        const where = `${d.metadata.name}/${c.name}`;
        for (const r of ['cpu', 'memory'] as const) {
          const req = quantity(c.resources?.requests?.[r]);
          const lim = quantity(c.resources?.limits?.[r]);
          expect(req, `${where} requests.${r}`).toBeGreaterThan(0);
          expect(lim, `${where} limits.${r} ≥ requests`).toBeGreaterThanOrEqual(req);
        }
        expect(c.securityContext, where).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        const portNames = new Set((c.ports ?? []).map((p) => p.name));
        for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
          if (!probe) continue;
          const get = probe.httpGet;
          expect(get, `${where}: HTTP probes only`).toBeDefined();
          expect(servedPaths(get!.path!), `${where} probes ${get!.path}, which the app does not serve`).toBe(
            true,
          );
          expect(
            portNames.has(String(get!.port)),
            `${where} probe port ${get!.port} is a named container port`,
          ).toBe(true);
        }
      }
    }
  });

  it('runs the API with readiness on /health/ready, liveness on /health/live and a drain on shutdown', () => {
    const d = api(target);
    const c = containersOf(d)[0]!;
    expect(c.args).toEqual(['serve']);
    expect(c.readinessProbe?.httpGet?.path).toBe('/health/ready');
    expect(c.livenessProbe?.httpGet?.path).toBe('/health/live');
    // The drain only works because readiness fails once shutdown begins.
    expect(readyWhileDraining).toBe(503);
    const env = environment(objects(), c);
    const http = c.ports?.find((p) => p.name === 'http');
    expect(String(http?.containerPort)).toBe(env.get('PORT'));
    const sleep = c.lifecycle?.preStop?.exec?.command;
    expect(sleep?.[0]).toBe('sleep');
    const seconds = Number(sleep?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(5);
    // After the preStop sleep, SIGTERM: src/cli/serve.ts drains and force-exits after 25 s at most.
    expect(podSpecOf(d)!.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(seconds + 25);
    // Spread over zones and nodes, each constraint selecting the API's own pods.
    const spread = podSpecOf(d)!.topologySpreadConstraints ?? [];
    expect(spread.map((s) => s.topologyKey).sort()).toEqual([
      'kubernetes.io/hostname',
      'topology.kubernetes.io/zone',
    ]);
    for (const s of spread) expect(selects(s.labelSelector?.matchLabels, podLabels(d))).toBe(true);
    // The HPA owns the replica count.
    expect(d.spec?.replicas).toBeUndefined();
  });

  it('sizes the worker within the partitions it was documented for', () => {
    const d = worker(target);
    expect(containersOf(d)[0]!.args).toEqual(['worker']);
    const partitions = Number(d.metadata.annotations?.[PARTITIONS_ANNOTATION]);
    expect(Number.isInteger(partitions) && partitions > 0, `${PARTITIONS_ANNOTATION} annotation`).toBe(true);
    expect(d.spec?.replicas).toBeGreaterThanOrEqual(1);
    expect(d.spec?.replicas, 'worker replicas ≤ Kafka partitions').toBeLessThanOrEqual(partitions);
    expect(d.spec?.strategy?.rollingUpdate?.maxSurge).toBe(0);
  });

  it('configures containers only with variables src/config.ts reads, and values it accepts', () => {
    for (const d of workloads(target)) {
      for (const c of containersOf(d)) {
        const env = environment(objects(), c);
        const unknown = [...env.keys()].filter((k) => !ENV_NAMES.has(k));
        expect(unknown, `${d.metadata.name}: not in EnvSchema`).toEqual([]);
        const literal = Object.fromEntries([...env].filter(([, v]) => v !== null)) as Record<string, string>;
        const secret = c.env?.some((e) => e.name === 'ADMIN_TOKEN') ? { ADMIN_TOKEN: 'x'.repeat(32) } : {};
        expect(() => loadConfig({ ...literal, ...secret, KAFKA_CLIENT_ID: 'pod' })).not.toThrow();
      }
    }
    for (const cm of byKind(objects(), 'ConfigMap') as (K8sObject & IConfigMap)[]) {
      if (!cm.metadata.name.startsWith('fraudscore-config')) continue;
      expect(Object.keys(cm.data ?? {}).filter((k) => !ENV_NAMES.has(k))).toEqual([]);
    }
  });

  it('takes ADMIN_TOKEN from a Secret by key, and keeps real secrets out of git', () => {
    const c = containersOf(api(target))[0]!;
    const ref = c.env?.find((e) => e.name === 'ADMIN_TOKEN')?.valueFrom?.secretKeyRef;
    expect(ref?.key).toBe('ADMIN_TOKEN');
    const secrets = byKind(objects(), 'Secret');
    if (target === 'dev') {
      const s = one(objects(), 'Secret', ref!.name!) as K8sObject & { data?: Record<string, string> };
      const token = Buffer.from(s.data?.ADMIN_TOKEN ?? '', 'base64').toString();
      expect(token).toMatch(/^dev-only-/);
    } else {
      expect(secrets).toEqual([]);
      expect(ref?.name).toBe(EXTERNAL_SECRET);
    }
    expect(containersOf(worker(target))[0]!.env?.some((e) => e.name === 'ADMIN_TOKEN')).toBe(false);
  });

  it('wires Services, the HPA and the disruption budgets to the Deployments', () => {
    const ds = deployments(target);
    for (const s of byKind(objects(), 'Service') as (K8sObject & IService)[]) {
      const d = ds.filter((x) => selects(s.spec?.selector, podLabels(x)));
      expect(d.length, `Service ${s.metadata.name} selects one Deployment`).toBe(1);
      const ports = new Set(containersOf(d[0]!).flatMap((c) => (c.ports ?? []).map((p) => p.name)));
      for (const p of s.spec?.ports ?? [])
        expect(ports.has(String(p.targetPort)), `${s.metadata.name}`).toBe(true);
    }
    const hpa = one(objects(), 'HorizontalPodAutoscaler', 'fraudscore-api') as K8sObject &
      IHorizontalPodAutoscaler;
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec?.scaleTargetRef).toMatchObject({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'fraudscore-api',
    });
    expect(hpa.spec?.metrics?.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu')).toBe(true);
    expect(hpa.spec?.minReplicas).toBeLessThanOrEqual(hpa.spec!.maxReplicas);
    const pdbs = byKind(objects(), 'PodDisruptionBudget') as (K8sObject & IPodDisruptionBudget)[];
    for (const d of ds) {
      expect(
        pdbs.filter((p) => selects(p.spec?.selector?.matchLabels, podLabels(d))).length,
        `one PDB for ${d.metadata.name}`,
      ).toBe(1);
    }
  });

  it('limits network traffic to the service port, Prometheus, Redis, Kafka and DNS', () => {
    const policies = byKind(objects(), 'NetworkPolicy') as (K8sObject & INetworkPolicy)[];
    for (const d of workloads(target)) {
      const mine = policies.filter((p) => selects(p.spec?.podSelector?.matchLabels, podLabels(d)));
      expect(mine.length, `NetworkPolicy for ${d.metadata.name}`).toBe(1);
      const p = mine[0]!;
      expect(p.spec?.policyTypes?.slice().sort()).toEqual(['Egress', 'Ingress']);
      const containerPorts = containersOf(d).flatMap((c) => (c.ports ?? []).map((x) => x.containerPort));
      const ingressPorts = (p.spec?.ingress ?? []).flatMap((r) => (r.ports ?? []).map((x) => x.port));
      expect(ingressPorts.slice().sort()).toEqual(containerPorts.slice().sort());
      const egress = new Set(
        (p.spec?.egress ?? []).flatMap((r) => (r.ports ?? []).map((x) => `${x.port}/${x.protocol ?? 'TCP'}`)),
      );
      for (const need of ['53/UDP', '53/TCP', '6379/TCP', '9092/TCP'])
        expect(egress.has(need), need).toBe(true);
    }
  });

  it('puts every namespaced object in the overlay namespace', () => {
    if (target === 'base') return;
    const namespaces = byKind(objects(), 'Namespace');
    expect(namespaces).toHaveLength(1);
    const ns = namespaces[0]!;
    expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const o of objects())
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, o.metadata.name).toBe(ns.metadata.name);
  });
});

describe.each(OVERLAYS)('overlay %s', (overlay) => {
  it('pins an image with a tag or digest and names one Redis mode and the Kafka brokers', () => {
    for (const d of workloads(overlay)) {
      for (const c of containersOf(d)) expect(c.image).toMatch(/^[^:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/);
      const env = environment(rendered(overlay), containersOf(d)[0]!);
      expect(
        Number(env.has('REDIS_URL')) + Number(env.has('REDIS_CLUSTER_NODES')),
        'exactly one Redis mode',
      ).toBe(1);
      expect(env.get('KAFKA_BROKERS')).toBeTruthy();
      expect(env.get('WORKER_IN_PROCESS')).toBe('false');
    }
  });
});

describe('overlay prod', () => {
  it('exposes only /v1/score and /v1/score/batch outside the cluster (issue 15)', () => {
    const ingresses = byKind(rendered('prod'), 'Ingress') as (K8sObject & {
      spec: { rules: { http: { paths: { path: string; pathType: string; backend: unknown }[] } }[] };
    })[];
    expect(ingresses).toHaveLength(1);
    const paths = ingresses[0]!.spec.rules.flatMap((r) => r.http.paths);
    expect(paths.map((p) => [p.path, p.pathType])).toEqual([['/v1/score', 'Prefix']]);
    expect(paths[0]!.backend).toEqual({ service: { name: 'fraudscore-api', port: { name: 'http' } } });
  });

  it('sizes the API for production and spreads it across zones', () => {
    const d = api('prod');
    const r = containersOf(d)[0]!.resources!;
    expect(quantity(r.requests?.cpu)).toBeGreaterThanOrEqual(0.5);
    expect(quantity(r.limits?.cpu)).toBeLessThanOrEqual(2);
    expect(quantity(r.requests?.memory)).toBeGreaterThanOrEqual(512 * 2 ** 20);
    expect(quantity(r.limits?.memory)).toBeLessThanOrEqual(2 ** 30);
    const zone = podSpecOf(d)!.topologySpreadConstraints?.find(
      (s) => s.topologyKey === 'topology.kubernetes.io/zone',
    );
    expect(zone?.whenUnsatisfiable).toBe('DoNotSchedule');
    const hpa = one(rendered('prod'), 'HorizontalPodAutoscaler', 'fraudscore-api') as K8sObject &
      IHorizontalPodAutoscaler;
    expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(3);
  });

  it('mounts the models volume read-only at MODEL_DIR', () => {
    const d = api('prod');
    const c = containersOf(d)[0]!;
    const modelDir = environment(rendered('prod'), c).get('MODEL_DIR');
    const mount = c.volumeMounts?.find((m) => m.mountPath === modelDir);
    expect(mount?.readOnly).toBe(true);
    const volume = podSpecOf(d)!.volumes?.find((v) => v.name === mount?.name);
    const claim = volume?.persistentVolumeClaim?.claimName;
    expect(claim).toBeDefined();
    one(rendered('prod'), 'PersistentVolumeClaim', claim!);
  });

  it('retrains weekly from the Kafka topics into the models volume the API serves (issue 19)', () => {
    const cron = one(rendered('prod'), 'CronJob', 'fraudscore-retrain') as K8sObject & ICronJob;
    const spec = cron.spec!;
    expect(byKind(rendered('prod'), 'CronJob')).toHaveLength(1);
    expect(spec.schedule.split(/\s+/)).toHaveLength(5);
    expect(spec.concurrencyPolicy).toBe('Forbid');
    const job = spec.jobTemplate.spec!;
    expect(job.template.spec?.restartPolicy).toBe('Never');
    // A rejected candidate (exit 3) is published; a retry would publish another one.
    expect(job.podFailurePolicy?.rules).toContainEqual(
      expect.objectContaining({ action: 'FailJob', onExitCodes: expect.objectContaining({ values: [3] }) }),
    );
    expect(job.activeDeadlineSeconds).toBeGreaterThan(0);
    const c = containersOf(cron)[0]!;
    const apiContainer = containersOf(api('prod'))[0]!;
    // The Dockerfile's retrain target (the API's image plus the training package), at the API's tag.
    const [apiName, apiTag] = apiContainer.image!.split(':');
    expect(c.image).toBe(`${apiName}-retrain:${apiTag}`);
    expect(c.args?.slice(0, 2)).toEqual(['retrain', '--from-kafka']);
    expect(c.args?.join(' ')).toContain('--trigger schedule');
    expect(c.args).not.toContain('--input');
    for (const flag of c.args?.filter((a) => a.startsWith('--')) ?? [])
      expect(retrainHelp, `fraudscore retrain ${flag}`).toContain(flag);
    // The same configuration as the API: MODEL_DIR, MODEL_NAME, FEATURE_DIR, the topics, the control plane.
    const env = environment(rendered('prod'), c);
    const apiEnv = environment(rendered('prod'), apiContainer);
    for (const k of ['MODEL_DIR', 'MODEL_NAME', 'FEATURE_DIR', 'KAFKA_BROKERS', 'REDIS_CLUSTER_NODES'])
      expect(env.get(k), k).toBe(apiEnv.get(k));
    expect(env.get('KAFKA_TOPIC_TRANSACTIONS')).toBeTruthy();
    expect(env.get('KAFKA_TOPIC_LABELS')).toBeTruthy();
    // It writes where the API reads: the same claim, mounted read-write at MODEL_DIR.
    const mount = c.volumeMounts?.find((m) => m.mountPath === env.get('MODEL_DIR'));
    expect(mount).toBeDefined();
    expect(mount?.readOnly ?? false).toBe(false);
    const claimOf = (o: K8sObject, name: string) =>
      podSpecOf(o)!.volumes?.find((v) => v.name === name)?.persistentVolumeClaim?.claimName;
    const apiMount = apiContainer.volumeMounts?.find((m) => m.mountPath === apiEnv.get('MODEL_DIR'));
    expect(claimOf(cron, mount!.name)).toBe(claimOf(api('prod'), apiMount!.name));
    // Its work dir (the export, the training sets) is writable despite the read-only root file system.
    expect(c.volumeMounts?.some((m) => m.mountPath === '/tmp')).toBe(true);
  });

  it('scrapes the API and the worker through ServiceMonitors that match their Services', () => {
    const monitors = byKind(rendered('prod'), 'ServiceMonitor') as (K8sObject & IServiceMonitor)[];
    const services = byKind(rendered('prod'), 'Service') as (K8sObject & IService)[];
    const scraped = new Set<string>();
    for (const m of monitors) {
      const matched = services.filter((s) => selects(m.spec.selector.matchLabels, s.metadata.labels));
      expect(matched.length, `ServiceMonitor ${m.metadata.name}`).toBe(1);
      const ports = new Set(matched[0]!.spec?.ports?.map((p) => p.name));
      for (const e of m.spec.endpoints ?? []) {
        expect(ports.has(e.port), `${m.metadata.name} endpoint port ${e.port}`).toBe(true);
        expect(servedPaths(e.path ?? '/metrics')).toBe(true);
      }
      scraped.add(matched[0]!.metadata.name);
    }
    expect([...scraped].sort()).toEqual(['fraudscore-api', 'fraudscore-worker-metrics']);
  });

  it('alerts with valid PromQL over metrics the service exports', () => {
    const rule = one(rendered('prod'), 'PrometheusRule', 'fraudscore') as K8sObject & IPrometheusRule;
    const alerts = (rule.spec.groups ?? []).flatMap((g) => g.rules ?? []);
    const used = new Set<string>();
    for (const a of alerts) {
      const { metrics, problems } = analyse(String(a.expr), catalog);
      expect(problems, `${a.alert ?? a.record}`).toEqual([]);
      for (const m of metrics) used.add(m);
      expect(a.labels?.severity, `${a.alert} severity`).toMatch(/^(page|warning)$/);
      expect(a.annotations?.summary, `${a.alert} summary`).toBeTruthy();
    }
    const byName = new Map(alerts.map((a) => [a.alert, a]));
    for (const name of [
      'FraudscoreScoringLatencyP99High',
      'FraudscoreHttp5xxRatioHigh',
      'FraudscoreDegradedRatioHigh',
      'FraudscoreFeaturePsiHigh',
      'FraudscoreScorePsiHigh',
      'FraudscoreConsumerLagGrowing',
      'FraudscoreNoActiveModel',
      'FraudscoreWorkerStalled',
      'FraudscoreFeaturesStale',
    ]) {
      expect(byName.has(name), name).toBe(true);
    }
    expect(byName.get('FraudscoreFeaturePsiHigh')?.for).toBe('15m');
    expect(byName.get('FraudscoreScorePsiHigh')?.for).toBe('15m');
    expect(String(byName.get('FraudscoreScoringLatencyP99High')?.expr)).toContain('stage="total"');
    expect(String(byName.get('FraudscoreConsumerLagGrowing')?.expr)).toMatch(
      /deriv\(fraudscore_consumer_lag\[10m\]\)/,
    );
    expect(String(byName.get('FraudscoreNoActiveModel')?.expr)).toContain('role="active"');
    for (const m of [
      'fraudscore_scoring_stage_duration_seconds_bucket',
      'fraudscore_http_request_duration_seconds_count',
      'fraudscore_degraded_total',
      'fraudscore_decisions_total',
      'fraudscore_feature_psi',
      'fraudscore_score_psi',
      'fraudscore_consumer_lag',
      'fraudscore_model_info',
      'fraudscore_worker_last_applied_timestamp_seconds',
      'fraudscore_feature_staleness_seconds',
    ]) {
      expect(used.has(m), m).toBe(true);
    }
  });

  it('alerts on a stalled worker and on stale features exactly when the service reports them', async () => {
    const rule = one(rendered('prod'), 'PrometheusRule', 'fraudscore') as K8sObject & IPrometheusRule;
    const expr = (name: string) =>
      String((rule.spec.groups ?? []).flatMap((g) => g.rules ?? []).find((a) => a.alert === name)?.expr);
    const T = 1_800_000_000;
    /** What a worker pod and an API pod export, scraped, with the worker's hooks fed as the worker feeds them. */
    const scrape = async (o: { lag: number; appliedAgo: number; staleness: number }) => {
      const worker = new Registry();
      const wm = createMetrics(worker, { version: 'test', commit: 'test' });
      const hooks = workerObserver(wm, () => {});
      hooks.partitionApplied('tx', 0, (T - 3600) * 1000);
      hooks.lag('tx', 0, 0);
      hooks.partitionApplied('tx', 1, (T - o.appliedAgo) * 1000);
      hooks.lag('tx', 1, o.lag);
      // A partition given to another worker leaves nothing behind.
      hooks.partitionApplied('tx', 2, (T - 3600) * 1000);
      hooks.lag('tx', 2, 99);
      hooks.released('tx', 2);
      const api = new Registry();
      createMetrics(api, { version: 'test', commit: 'test' }).featureStaleness.set(o.staleness);
      return [
        ...parseExposition(await worker.metrics(), {
          namespace: 'ns',
          pod: 'w-1',
          job: 'fraudscore-worker-metrics',
        }),
        ...parseExposition(await api.metrics(), { namespace: 'ns', pod: 'a-1', job: 'fraudscore-api' }),
      ];
    };
    const fires = async (name: string, o: { lag: number; appliedAgo: number; staleness: number }) => {
      const v = evaluate(expr(name), await scrape(o), { time: T });
      return v.type === 'vector' ? v.series.map((s) => ({ ...s.labels, value: s.value })) : v;
    };
    expect(await fires('FraudscoreWorkerStalled', { lag: 5, appliedAgo: 301, staleness: 0 })).toEqual([
      { namespace: 'ns', topic: 'tx', partition: '1', value: 301 },
    ]);
    expect(await fires('FraudscoreWorkerStalled', { lag: 5, appliedAgo: 299, staleness: 0 })).toEqual([]);
    expect(await fires('FraudscoreWorkerStalled', { lag: 0, appliedAgo: 86_400, staleness: 0 })).toEqual([]);
    expect(await fires('FraudscoreFeaturesStale', { lag: 0, appliedAgo: 0, staleness: 301 })).toEqual([
      { namespace: 'ns', value: 301 },
    ]);
    expect(await fires('FraudscoreFeaturesStale', { lag: 0, appliedAgo: 0, staleness: 299 })).toEqual([]);
  });

  it("alerts when the active version's precision at decline is under the floor over enough labelled declines", async () => {
    const rule = one(rendered('prod'), 'PrometheusRule', 'fraudscore') as K8sObject & IPrometheusRule;
    const expr = String(
      (rule.spec.groups ?? [])
        .flatMap((g) => g.rules ?? [])
        .find((a) => a.alert === 'FraudscorePrecisionAtDeclineLow')?.expr,
    );
    /** Two API pods reporting the shared store's numbers, as the service sets its gauges. */
    const fires = async (o: { precision: number; frauds: number; legit: number; role?: string }) => {
      const series = [];
      for (const pod of ['a-1', 'a-2']) {
        const api = new Registry();
        const m = createMetrics(api, { version: 'test', commit: 'test' });
        m.precisionFloor.set({ at: 'decline' }, 0.5);
        m.precisionFloorMinOutcomes.set(200);
        const labels = { model_version: '7', role: o.role ?? 'active' };
        m.modelPrecision.set({ ...labels, at: 'decline' }, o.precision);
        m.modelOutcomes.set({ ...labels, decision: 'decline', label: 'fraud' }, o.frauds);
        m.modelOutcomes.set({ ...labels, decision: 'decline', label: 'not_fraud' }, o.legit);
        series.push(...parseExposition(await api.metrics(), { namespace: 'ns', pod, job: 'fraudscore-api' }));
      }
      const v = evaluate(expr, series, { time: 1_800_000_000 });
      return v.type === 'vector' ? v.series.map((x) => ({ ...x.labels, value: x.value })) : v;
    };
    expect(await fires({ precision: 0.4, frauds: 80, legit: 120 })).toEqual([
      { namespace: 'ns', value: 0.4 },
    ]);
    expect(await fires({ precision: 0.4, frauds: 79, legit: 120 })).toEqual([]);
    expect(await fires({ precision: 0.6, frauds: 600, legit: 400 })).toEqual([]);
    expect(await fires({ precision: 0.1, frauds: 100, legit: 900, role: 'shadow' })).toEqual([]);
  });

  it('ships a Grafana dashboard whose every query is valid PromQL over exported metrics', () => {
    const cm = one(rendered('prod'), 'ConfigMap', 'fraudscore-grafana-dashboard') as K8sObject & IConfigMap;
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    const files = Object.entries(cm.data ?? {});
    expect(files.map(([k]) => k)).toEqual(['fraudscore.json']);
    const dashboard = JSON.parse(files[0]![1]) as {
      uid: string;
      panels: { title: string; type: string; targets?: { expr: string }[] }[];
      templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
    };
    expect(dashboard.uid).toBeTruthy();
    const used = new Set<string>();
    for (const p of dashboard.panels.filter((x) => x.type !== 'row')) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        const { metrics, problems } = analyse(substituteGrafanaVariables(t.expr), catalog);
        expect(problems, `${p.title}: ${t.expr}`).toEqual([]);
        for (const m of metrics) used.add(m);
      }
    }
    for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q ?? '');
      expect(m, `variable ${v.name}: label_values(selector, label)`).not.toBeNull();
      const { metrics, problems } = analyse(substituteGrafanaVariables(m![1]!), catalog);
      expect(problems, `variable ${v.name}`).toEqual([]);
      expect(m![2] === 'namespace' || catalog.get(metrics[0]!)!.has(m![2]!), `variable ${v.name} label`).toBe(
        true,
      );
    }
    for (const m of [
      'fraudscore_scoring_stage_duration_seconds_bucket', // latency per stage
      'fraudscore_http_request_duration_seconds_count', // throughput
      'fraudscore_decisions_total', // decisions by decision and model_version
      'fraudscore_score_bucket', // score distribution per version
      'fraudscore_feature_psi', // PSI per feature
      'fraudscore_consumer_lag', // consumer lag
      'fraudscore_worker_last_applied_timestamp_seconds', // stalled partitions
      'fraudscore_feature_staleness_seconds', // staleness seen by the API
      'process_resident_memory_bytes', // prom-client's standard process and runtime names, unprefixed
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(used.has(m), m).toBe(true);
    }
    // Unprefixed names are shared with every other Node.js process in the namespace: scope them to ours.
    for (const p of dashboard.panels)
      for (const t of p.targets ?? [])
        if (/\b(process|nodejs)_/.test(t.expr))
          expect(t.expr, p.title).toContain('job=~"fraudscore-api|fraudscore-worker-metrics"');
  });
});

describe('the validators reject what they should', () => {
  interface Draft {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec: {
      replicas?: unknown;
      selector?: unknown;
      template: { metadata: unknown; spec: { containers: Record<string, unknown>[] } };
    };
  }
  const deployment = (mutate: (d: Draft) => void): K8sObject => {
    const d: Draft = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'broken' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'x' } },
        template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } },
      },
    };
    mutate(d);
    return d as unknown as K8sObject;
  };

  it('accepts the control case', () => {
    expect(validateObject(deployment(() => {}))).toEqual([]);
  });

  it('rejects a broken Deployment rendered by kustomize (replicas: "three", a container without an image)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fraudscore-k8s-'));
    try {
      await writeFile(join(dir, 'kustomization.yaml'), 'resources: [deployment.yaml]\n');
      await writeFile(
        join(dir, 'deployment.yaml'),
        [
          'apiVersion: apps/v1',
          'kind: Deployment',
          'metadata: {name: broken}',
          'spec:',
          '  replicas: three',
          '  selector: {matchLabels: {app: x}}',
          '  template:',
          '    metadata: {labels: {app: x}}',
          '    spec: {containers: [{name: c}]}',
          '',
        ].join('\n'),
      );
      const problems = (await render(dir)).flatMap(validateObject);
      expect(problems.join('\n')).toMatch(/replicas must be integer/);
      expect(problems.join('\n')).toMatch(/container c has no image/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a bad quantity, a missing required field and an unknown kind', () => {
    const bad = deployment((d) => {
      d.spec.template.spec.containers[0]!.resources = { limits: { cpu: 'two' } };
    });
    expect(validateObject(bad).join()).toMatch(/quantity/);
    const noSelector = deployment((d) => {
      delete d.spec.selector;
    });
    expect(validateObject(noSelector).join()).toMatch(/selector/);
    const unknownKind = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
    expect(validateObject(unknownKind).join()).toMatch(/no schema/);
  });

  it('rejects PromQL with a syntax error, an unknown metric or a label the metric lacks', () => {
    expect(analyse('sum(rate(fraudscore_decisions_total[5m]) by', catalog).problems.join()).toMatch(/syntax/);
    expect(analyse('rate(fraudscore_requests_total[5m])', catalog).problems).toEqual([
      'unknown metric fraudscore_requests_total',
    ]);
    expect(analyse('fraudscore_decisions_total{model="x"}', catalog).problems).toEqual([
      'fraudscore_decisions_total has no label model',
    ]);
    expect(analyse('sum by (reason) (fraudscore_decisions_total)', catalog).problems.join()).toMatch(
      /reason/,
    );
    expect(analyse('sum by (le) (rate(fraudscore_score_bucket[5m]))', catalog).problems).toEqual([]);
  });

  it('parses a multi-document stream the way kubectl would', () => {
    expect(parseYamlStream('a: 1\n---\n---\nb: 2\n')).toHaveLength(2);
  });
});

describe('Dockerfile', () => {
  it('passes hadolint', async () => {
    const { stdout } = await run('bash', [`${ROOT}scripts/lint-docker.sh`], { cwd: ROOT });
    expect(stdout).toBe('');
  }, 300_000);

  it('hadolint fails a bad Dockerfile (the lint can fail)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fraudscore-docker-'));
    try {
      await writeFile(
        join(dir, 'Dockerfile'),
        'FROM node:latest\nRUN apt-get update && apt-get install -y curl\nCMD node x.js\n',
      );
      const linted = run('bash', [`${ROOT}scripts/lint-docker.sh`, join(dir, 'Dockerfile')], { cwd: ROOT });
      await expect(linted).rejects.toMatchObject({ code: 1, stdout: expect.stringMatching(/DL3007/) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('builds the image the manifests expect', async () => {
    const text = await readFile(`${ROOT}Dockerfile`, 'utf8');
    const stages = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gm)].map((m) => ({
      from: m[1]!,
      as: m[2],
    }));
    expect(stages.length).toBeGreaterThanOrEqual(2);
    // The default target (the last stage) is the runtime, on a Node slim image (possibly through a base stage).
    const imageOf = (from: string): string => {
      const stage = stages.find((x) => x.as === from);
      return stage ? imageOf(stage.from) : from;
    };
    expect(stages.at(-1)?.as).toBe('runtime');
    expect(imageOf(stages.at(-1)!.from)).toMatch(
      /^node:(22|24)(\.\d+)*-(bookworm|trixie)-slim(@sha256:[0-9a-f]{64})?$/,
    );
    // The retrain target adds the training package where the CLI's defaults look for it.
    expect(stages.map((x) => x.as)).toContain('retrain');
    expect(text).toMatch(/^RUN .*python3 -m venv training\/\.venv\b/m);
    expect(text).toMatch(/^COPY training\/fraudscore_training training\/fraudscore_training$/m);
    expect(text).toMatch(/^RUN .*npm ci\b/m);
    expect(text).toMatch(/^RUN .*npm run build\b/m);
    expect(text).toMatch(/^RUN .*npm ci --omit=dev\b/m);
    expect(text).toMatch(/^ENV NODE_ENV=production\b/m);
    expect(text).toMatch(/^ENTRYPOINT \["node", ?"dist\/src\/cli\/main\.js"\]$/m);
    expect(text).toMatch(/^CMD \["serve"\]$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\/health\/live/ms);
    const port = /^EXPOSE (\d+)$/m.exec(text)?.[1];
    expect(port).toBe(String(EnvSchema.shape.PORT.parse(undefined)));
    // The pods run as the image's user: the same numeric uid, so runAsNonRoot can verify it.
    const uid = /^USER (\d+)(?::\d+)?$/m.exec(text)?.[1];
    expect(Number(uid)).toBeGreaterThan(0);
    for (const d of workloads('prod')) expect(podSpecOf(d)!.securityContext?.runAsUser).toBe(Number(uid));
    // The build context is a whitelist: what the image copies must be on it.
    const ignore = await readFile(`${ROOT}.dockerignore`, 'utf8');
    for (const need of [
      'package.json',
      'package-lock.json',
      '.npmrc',
      'src/',
      'features/',
      'models/',
      'training/requirements.txt',
      'training/fraudscore_training/',
    ]) {
      expect(ignore).toContain(`!${need}`);
    }
  });
});
