import { Writable } from 'node:stream';
import { pino } from 'pino';
import { REDACT } from '../../src/adapters/logging/logger.js';

export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** A real pino logger (with the service's redaction) whose lines land in `sink` for assertions. */
export function captureLogger(sink: LogLine[] = [], level = 'debug') {
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) sink.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' } }, stream);
}

export function silentLogger() {
  return pino({ level: 'silent' });
}
