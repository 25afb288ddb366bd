import type { PGlite } from '@electric-sql/pglite';
import { SuperduperError } from '../../errors.js';

/**
 * PGlite ends its WebAssembly program when its PostgreSQL exits (a FATAL error
 * in the one session: the call throws "Program terminated with exit(1)"), and
 * any call after that spins forever on the host's thread, deaf even to SIGTERM.
 * So every entry point of the instance is guarded: the first exit marks the
 * database stopped and tells onExit, and every later call fails at once with
 * the reason. What was committed is in the data folder; opening it again
 * recovers it, as a server recovers after a crash.
 */
const ENTRY_POINTS = ['query', 'exec', 'execProtocol', 'execProtocolRaw', 'transaction', 'listen', 'unlisten', 'dumpDataDir', 'close'] as const;

export function guardExit(pglite: PGlite, onExit: (stopped: SuperduperError) => void): { stopped(): SuperduperError | undefined } {
  let stopped: SuperduperError | undefined;
  for (const name of ENTRY_POINTS) {
    const original = (pglite[name] as (...args: unknown[]) => Promise<unknown>).bind(pglite);
    const exited = (error: unknown): never => {
      if ((error as { name?: string }).name !== 'ExitStatus') throw error;
      stopped = new SuperduperError(`the embedded database stopped: PostgreSQL inside PGlite exited (${(error as Error).message})`, {
        hint: 'Start the process again: what was committed is in the data folder, and opening it recovers it.',
        code: '57P01',
        cause: error,
      });
      onExit(stopped);
      throw stopped;
    };
    // Not an async function: the hot path (every statement) keeps its number of promise hops.
    (pglite as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      if (stopped) return name === 'close' ? Promise.resolve() : Promise.reject(stopped); // nothing left to close
      try {
        return original(...args).catch(exited);
      } catch (error) {
        return Promise.reject(error).catch(exited);
      }
    };
  }
  return { stopped: () => stopped };
}
