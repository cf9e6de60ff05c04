import {
  isSpanContextValid,
  type Attributes as OtelAttributes,
  type Span as OtelSpan,
  type Tracer as OtelTracer,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../../ports/logger.js';
import type {
  Attributes,
  SpanKind as PortSpanKind,
  Span,
  SpanOptions,
  TraceContext,
  Tracer,
} from '../../ports/tracer.js';

/** The samplers of the OTEL_TRACES_SAMPLER specification that fraudscore supports. */
export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface OtelTracingOptions {
  /** Where spans go (OTEL_TRACES_EXPORTER without `none`). */
  readonly exporters: readonly ('otlp' | 'console')[];
  /** OTLP over HTTP, protobuf (the specification's default) or JSON. */
  readonly protocol: OtlpProtocol;
  readonly sampler: SamplerName;
  /** The ratio of the `*traceidratio` samplers, in [0, 1]. */
  readonly samplerArg: number;
  /** `service.version` and `service.instance.id`; `service.name` is fraudscore unless OTEL_SERVICE_NAME says otherwise. */
  readonly service: { readonly version: string; readonly instanceId: string };
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /** Tests: spans go to this exporter instead, one at a time as they end (a simple span processor). */
  readonly exporter?: SpanExporter;
}

export interface OtelTracing {
  readonly tracer: Tracer;
  /** What was started, for the log line at startup. */
  readonly description: Record<string, unknown>;
  /** Exports what is buffered. */
  forceFlush(): Promise<void>;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/**
 * The OpenTelemetry SDK behind the Tracer port: a tracer provider of its own (never the global one), the W3C
 * trace-context propagator, and OTLP/HTTP or console exporters. The OTLP exporter reads its endpoint, headers,
 * timeout, compression and certificates from the standard OTEL_EXPORTER_OTLP_* variables, the batch span
 * processor its limits from OTEL_BSP_*, and the resource OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
 */
export async function startOtelTracing(o: OtelTracingOptions): Promise<OtelTracing> {
  const processors: SpanProcessor[] = [];
  if (o.exporter) processors.push(new SimpleSpanProcessor(o.exporter));
  else
    for (const kind of new Set(o.exporters)) {
      if (kind === 'console') processors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
      else
        processors.push(
          new BatchSpanProcessor(new ReportingExporter(await otlpExporter(o.protocol), o.logger)),
        );
    }
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        'service.name': 'fraudscore',
        'service.version': o.service.version,
        'service.instance.id': o.service.instanceId,
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({
    resource,
    sampler: samplerOf(o.sampler, o.samplerArg),
    spanProcessors: processors,
  });
  const tracer = new OtelTracerAdapter(provider.getTracer('fraudscore', o.service.version));
  return {
    tracer,
    description: {
      exporters: o.exporter ? ['injected'] : [...new Set(o.exporters)],
      ...(o.exporters.includes('otlp') && !o.exporter ? { protocol: o.protocol } : {}),
      sampler: o.sampler,
      ...(o.sampler.endsWith('traceidratio') ? { ratio: o.samplerArg } : {}),
      service: resource.attributes['service.name'],
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

async function otlpExporter(protocol: OtlpProtocol): Promise<SpanExporter> {
  if (protocol === 'http/json') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter();
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter();
}

function samplerOf(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/** Says once when the collector stops taking spans (they are dropped meanwhile), and once when it takes them again. */
class ReportingExporter implements SpanExporter {
  private failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) {
        if (!this.failing)
          this.logger.warn(
            { err: result.error, spans: spans.length },
            'trace export failed; spans are dropped until the collector takes them again',
          );
        this.failing = true;
      } else if (this.failing) {
        this.failing = false;
        this.logger.info({}, 'trace export works again');
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

const KINDS: Readonly<Record<PortSpanKind, SpanKind>> = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
};

/** HTTP headers (strings, or arrays of them) and Kafka message headers (Buffers) alike. */
const getter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const text = (v: unknown) =>
      typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('latin1') : undefined;
    const value = carrier[key];
    if (Array.isArray(value)) return value.map(text).filter((v): v is string => v !== undefined);
    return text(value);
  },
};

class OtelTracerAdapter implements Tracer {
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(private readonly tracer: OtelTracer) {}

  start(name: string, o: SpanOptions = {}): Span {
    const parent = o.parent ? trace.setSpanContext(ROOT_CONTEXT, spanContextOf(o.parent)) : ROOT_CONTEXT;
    const span = this.tracer.startSpan(
      name,
      {
        kind: KINDS[o.kind ?? 'internal'],
        ...(o.attributes ? { attributes: clean(o.attributes) } : {}),
        ...(o.links?.length ? { links: o.links.map((c) => ({ context: spanContextOf(c) })) } : {}),
      },
      parent,
    );
    return new OtelSpanAdapter(span);
  }

  extract(headers: Readonly<Record<string, unknown>>): TraceContext | undefined {
    const context = trace.getSpanContext(this.propagator.extract(ROOT_CONTEXT, headers, getter));
    return context && isSpanContextValid(context) ? context : undefined;
  }

  inject(context: TraceContext, headers: Record<string, string>): void {
    this.propagator.inject(trace.setSpanContext(ROOT_CONTEXT, spanContextOf(context)), headers, {
      set: (carrier, key, value) => {
        carrier[key] = value;
      },
    });
  }
}

class OtelSpanAdapter implements Span {
  readonly context: TraceContext;
  private ended = false;

  constructor(private readonly span: OtelSpan) {
    this.context = span.spanContext();
  }

  get recording(): boolean {
    return this.span.isRecording();
  }

  setAttributes(attributes: Attributes): void {
    this.span.setAttributes(clean(attributes));
  }

  fail(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.span.recordException(err);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.span.end();
  }
}

/** Contexts this adapter made are SpanContexts already; any other is taken as not sampled. */
function spanContextOf(c: TraceContext): SpanContext {
  return 'traceFlags' in c ? (c as SpanContext) : { ...c, traceFlags: TraceFlags.NONE };
}

function clean(attributes: Attributes): OtelAttributes {
  const out: OtelAttributes = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v as OtelAttributes[string];
  return out;
}
