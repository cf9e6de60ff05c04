import { pino } from 'pino';
import type { Logger } from '../../ports/logger.js';

/** Paths never written to logs, whatever a caller passes. */
export const REDACT = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  'adminToken',
  'config.ADMIN_TOKEN',
  'ADMIN_TOKEN',
  'config.EVENTS_TOKEN',
  'EVENTS_TOKEN',
  'eventsToken',
  'device_id',
  'ip',
  '*.device_id',
  '*.ip',
  '*.*.device_id',
  '*.*.ip',
  '*.*.*.device_id',
  '*.*.*.ip',
];

/** The longest a written line waits in the buffer when too little is logged to fill it (ms). */
export const LOG_FLUSH_MS = 1000;

/**
 * JSON lines on stdout. Writes are buffered (4 KiB) rather than one syscall per line: an audit record per
 * decision would otherwise cost more than the scoring. When the service is quiet the buffer would hold a line
 * indefinitely, so it is also written out every LOG_FLUSH_MS (a timer that keeps no process alive). `flush()` on
 * shutdown writes what is left.
 */
export function createLogger(level: string, extraRedact: readonly string[] = []): Logger & pino.Logger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const timer = setInterval(() => {
    try {
      destination.flush();
    } catch {
      clearInterval(timer); // destroyed: the logger was closed
    }
  }, LOG_FLUSH_MS);
  timer.unref();
  return pino(
    {
      level,
      base: { service: 'fraudscore' },
      redact: { paths: [...REDACT, ...extraRedact], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/**
 * The scoring path's logger: its warnings carry errors and ids, never a transaction body, so the deep wildcard
 * redaction (the costliest part of a log line) is narrowed to what such records could hold.
 */
export function scoringLogger(logger: pino.Logger, bindings: object): pino.Logger {
  return logger.child(bindings, {
    redact: { paths: ['device_id', 'ip', '*.device_id', '*.ip', 'authorization'], censor: '[redacted]' },
  });
}

/**
 * The decision audit lines' logger, `audit: "decision"` bound once. Their records are built field by field
 * (DecisionRecord: ids, model, score, decision, reasons) and hold nothing to redact, so none of a line's
 * redaction is paid: it was most of what a line cost, at one line per decision.
 */
export function decisionAuditLogger(logger: pino.Logger, bindings: object): pino.Logger {
  return logger.child({ ...bindings, audit: 'decision' }, { redact: { paths: [] } });
}
