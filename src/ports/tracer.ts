/**
 * Distributed tracing as the use cases see it. The OpenTelemetry SDK implements it (src/adapters/tracing), started
 * by the wiring only when OTEL_TRACES_EXPORTER asks for it. Tracing off is the absence of a tracer: every traced
 * call site takes an optional `Tracer` (and an optional parent `TraceContext`) and does nothing without one, so the
 * off path allocates no span, no attribute object and no context.
 *
 * Attributes never carry card, customer, terminal or device identifiers in clear.
 */

/** A span's place in a trace: what a child span is parented on, and what outgoing headers carry. */
export interface TraceContext {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
}

export type AttributeValue = string | number | boolean | readonly string[] | readonly number[];
/** Undefined values are left out. */
export type Attributes = Readonly<Record<string, AttributeValue | undefined>>;

export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

export interface SpanOptions {
  /** The span this one is a child of; without it, the span starts a trace of its own. */
  readonly parent?: TraceContext;
  /** Other spans this one works for, when it has several causes (a micro-batch serving several requests). */
  readonly links?: readonly TraceContext[];
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
}

export interface Span {
  readonly context: TraceContext;
  /** False when nothing records this span (not sampled, or tracing off): skip work done only for attributes. */
  readonly recording: boolean;
  setAttributes(attributes: Attributes): void;
  /** Marks the span failed: error status, and the error as an exception event. */
  fail(error: unknown): void;
  /** Idempotent. */
  end(): void;
}

export interface Tracer {
  start(name: string, options?: SpanOptions): Span;
  /** The W3C trace context (`traceparent`, `tracestate`) of incoming headers or message headers, when valid. */
  extract(headers: Readonly<Record<string, unknown>>): TraceContext | undefined;
  /** Writes the W3C trace context of `context` into outgoing headers. */
  inject(context: TraceContext, headers: Record<string, string>): void;
}
