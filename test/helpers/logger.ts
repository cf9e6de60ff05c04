import type { Logger } from '../../src/ports/logger.js';

export interface CapturedLog {
  level: string;
  obj: object;
  msg?: string | undefined;
}

/** A Logger that keeps what it is told, for assertions (and silence). */
export function silentLogger(sink: CapturedLog[] = []): Logger {
  const at =
    (level: string) =>
    (obj: object, msg?: string): void =>
      void sink.push({ level, obj, msg });
  const logger: Logger = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), child: () => logger };
  return logger;
}
