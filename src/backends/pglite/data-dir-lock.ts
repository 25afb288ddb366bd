import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { SuperduperError } from '../../errors.js';

/**
 * Keeps a data folder to one process. PGlite is a single-user PostgreSQL: two
 * processes (or two PGlite instances) writing the same folder would corrupt it,
 * and PGlite does not stop them. The lock is a folder beside the data folder
 * (`<dir>.lock`), refreshed while held, so that one left by a killed process
 * goes stale and is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true });
  try {
    await lockfile.lock(dir, { ...LOCK_OPTIONS, update: 2_000, onCompromised: () => {} });
    // Released synchronously: a process interrupted mid-backfill was seen to end
    // right after PGlite closed, cutting an asynchronous release short and
    // leaving the lock behind (proper-lockfile's own exit hook no longer knew of
    // it by then).
    return async () => lockfile.unlockSync(dir, LOCK_OPTIONS);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw inUse(dir);
    throw error;
  }
}

/** Refuses when another process has the folder open (before deleting it, say). */
export async function assertDataDirFree(dataDir: string): Promise<void> {
  const dir = resolve(dataDir);
  if (existsSync(dir) && (await lockfile.check(dir, LOCK_OPTIONS))) throw inUse(dir);
}

const LOCK_OPTIONS = { stale: 10_000, realpath: false };

function inUse(dir: string): SuperduperError {
  return new SuperduperError(`the embedded database in ${dir} is in use by another process`, {
    hint:
      'Stop that process (a "npx superduper demo --serve" or "npx superduper serve", say) or connect to its wire endpoint with psql instead; or use another --dir. ' +
      'A lock left by a process that was killed frees itself within 10 seconds.',
  });
}
