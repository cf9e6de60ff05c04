import type { Span, TraceContext, Tracer } from '../ports/tracer.js';

const INVALID: TraceContext = Object.freeze({ traceId: '0'.repeat(32), spanId: '0'.repeat(16) });

const NOOP_SPAN: Span = Object.freeze({
  context: INVALID,
  recording: false,
  setAttributes() {},
  fail() {},
  end() {},
});

/** Tracing off: every span is the same frozen no-op, nothing is read from or written to headers. */
export const NOOP_TRACER: Tracer = Object.freeze({
  start: () => NOOP_SPAN,
  extract: () => undefined,
  inject() {},
});
