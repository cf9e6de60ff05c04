import { z } from 'zod';
import type { Logger } from '../../ports/logger.js';

export const WatchModeSchema = z.enum(['off', 'load', 'activate', 'canary']);
export type WatchMode = z.infer<typeof WatchModeSchema>;

export const WatchOptionsSchema = z.object({
  mode: WatchModeSchema,
  name: z.string().min(1),
  intervalMs: z.number().int().min(10).default(5_000),
  canaryPercent: z.number().gt(0).max(100).default(10),
});

export type WatchOptions = z.input<typeof WatchOptionsSchema> & {
  readonly logger: Pick<Logger, 'info' | 'warn'>;
};

export interface ModelWatch {
  /** Stops polling; resolves once a poll in progress has finished. */
  stop(): Promise<void>;
}

/** What the watch drives: the registry for this replica's loads, the fleet for role changes. */
interface Registry {
  latest(name: string): Promise<string | undefined>;
  active(name: string): unknown;
  load(name: string, version: string): Promise<unknown>;
  unload(name: string, version: string): Promise<unknown>;
  activate(name: string, version: string): Promise<unknown>;
  setCanary(name: string, canary: { version: string; percent: number }): Promise<unknown>;
}

/**
 * Polls MODEL_DIR for versions newer than the newest one seen when the watch started, and loads, activates or
 * canaries each as configured. A version is tried once: a refused load stays visible as the registry's failure
 * state and the watch carries on, so a broken publish never takes the service down.
 */
export function startModelWatch(registry: Registry, options: WatchOptions): ModelWatch {
  const o = WatchOptionsSchema.parse(options);
  const log = options.logger;
  if (o.mode === 'off') return { stop: async () => {} };

  let newest: number | undefined;
  let lastLoaded: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const apply = async (version: string) => {
    if (o.mode === 'load') {
      await registry.load(o.name, version);
      if (lastLoaded) await registry.unload(o.name, lastLoaded).catch(() => undefined);
      lastLoaded = version;
    } else if (o.mode === 'activate' || !registry.active(o.name)) {
      await registry.activate(o.name, version);
    } else {
      await registry.setCanary(o.name, { version, percent: o.canaryPercent });
    }
  };

  const poll = async () => {
    let latest: string | undefined;
    try {
      latest = await registry.latest(o.name);
    } catch (err) {
      log.warn({ err, model: o.name }, 'model watch cannot list versions');
      return;
    }
    const n = latest === undefined ? 0 : Number(latest);
    if (newest === undefined) {
      newest = n;
      log.info({ model: o.name, mode: o.mode, newest: latest }, 'model watch started');
      return;
    }
    if (!latest || n <= newest) return;
    // Marked seen before trying: a refused version is not retried on every poll.
    newest = n;
    const action = o.mode === 'canary' && registry.active(o.name) ? 'canary' : o.mode;
    try {
      await apply(latest);
      log.info({ model: o.name, version: latest, action }, 'model watch picked up a new version');
    } catch (err) {
      log.warn(
        { model: o.name, version: latest, action, reason: (err as Error).message },
        'model watch could not use a new version',
      );
    }
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = poll().finally(schedule);
    }, o.intervalMs);
    timer.unref();
  };
  running = poll().finally(schedule);

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
