import { destination, pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { configuration } from './config.js';

export type { Logger };

/**
 * The root logger, on stderr (stdout belongs to command output):
 * SUPERDUPER_LOG_LEVEL sets the level (default "info"; "silent" in tests), and
 * SUPERDUPER_LOG_FORMAT the form. On a terminal, lines for people (the time of
 * day, the level, the message, then the fields); otherwise JSON lines, one per
 * event, for a log collector.
 */
export function createLogger(level = configuration().logLevel ?? 'info', format = configuration().logFormat): Logger {
  const form = format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  if (form === 'json') return pino({ name: 'superduper', level }, destination(2));
  return pino(
    { name: 'superduper', level },
    pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }),
  );
}

let rootLogger: Logger | undefined;

export function defaultLogger(): Logger {
  rootLogger ??= createLogger();
  return rootLogger;
}
