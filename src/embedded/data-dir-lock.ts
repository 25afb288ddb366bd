import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { SuperduperError } from '../errors.js';

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
    return await lockfile.lock(dir, { stale: 10_000, update: 2_000, realpath: false, onCompromised: () => {} });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new SuperduperError(`the embedded database in ${dir} is in use by another process`, {
        hint: 'Stop that process (a "superduper demo --serve" or "superduper serve", say) or connect to its wire endpoint with psql instead; or use another --dir.',
      });
    }
    throw error;
  }
}
