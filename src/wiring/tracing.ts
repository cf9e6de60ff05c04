import type { OtelTracingOptions } from '../adapters/tracing/otel.js';
import type { Config } from '../config.js';
import type { Logger } from '../ports/logger.js';
import type { Tracer } from '../ports/tracer.js';

export interface Tracing {
  /** Undefined when tracing is off: then nothing of the OpenTelemetry SDK was even loaded. */
  readonly tracer: Tracer | undefined;
  /** Exports what is buffered. */
  flush(): Promise<void>;
  /** Exports what is buffered and stops; idempotent. */
  shutdown(): Promise<void>;
}

export const TRACING_OFF: Tracing = Object.freeze({
  tracer: undefined,
  flush: async () => {},
  shutdown: async () => {},
});

export interface TracingOptions {
  readonly service: { readonly version: string; readonly instanceId: string };
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /** Tests: spans go to this exporter (e.g. the SDK's InMemorySpanExporter), whatever the config says. */
  readonly exporter?: OtelTracingOptions['exporter'];
}

/** The exporters OTEL_TRACES_EXPORTER names, none when tracing is off (unset, `none`, or OTEL_SDK_DISABLED). */
export function traceExporters(config: Config): ('otlp' | 'console')[] {
  if (config.OTEL_SDK_DISABLED) return [];
  return (config.OTEL_TRACES_EXPORTER ?? []).filter((e): e is 'otlp' | 'console' => e !== 'none');
}

/**
 * Starts the OpenTelemetry SDK when the configuration asks for an exporter; otherwise returns TRACING_OFF without
 * importing the SDK (the adapter module is loaded on demand), so tracing off costs nothing.
 */
export async function startTracing(config: Config, o: TracingOptions): Promise<Tracing> {
  const exporters = traceExporters(config);
  if (exporters.length === 0 && !o.exporter) return TRACING_OFF;
  const { startOtelTracing } = await import('../adapters/tracing/otel.js');
  const started = await startOtelTracing({
    exporters,
    protocol:
      config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
    sampler: config.OTEL_TRACES_SAMPLER,
    samplerArg: config.OTEL_TRACES_SAMPLER_ARG,
    service: o.service,
    logger: o.logger,
    ...(o.exporter ? { exporter: o.exporter } : {}),
  });
  o.logger.info({ tracing: started.description }, 'OpenTelemetry tracing on');
  let stopped: Promise<void> | undefined;
  return {
    tracer: started.tracer,
    flush: () => started.forceFlush(),
    shutdown: () => {
      stopped ??= started.shutdown();
      return stopped;
    },
  };
}
