import { destination, pino, type Logger } from 'pino';
import { configuration } from './config.js';

export type { Logger };

/**
 * The root logger: JSON lines on stderr (stdout belongs to command output).
 * SUPERDUPER_LOG_LEVEL sets the level (default "info"; "silent" in tests).
 */
export function createLogger(level = configuration().logLevel ?? 'info'): Logger {
  return pino({ name: 'superduper', level }, destination(2));
}

let rootLogger: Logger | undefined;

export function defaultLogger(): Logger {
  rootLogger ??= createLogger();
  return rootLogger;
}
