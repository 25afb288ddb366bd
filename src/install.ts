import type { Backend } from './backends/backend.js';
import { openBackend } from './backends/open.js';
import type { SqlDriver } from './backends/postgres/sql-driver.js';
import type { InstallResult } from './backends/types.js';
import { defaultLogger } from './logger.js';

export type { InstallResult };

/**
 * Installs or upgrades superduper's layer in a database you opened (a driver, or
 * a backend). Safe to run any number of times and from several processes at
 * once; refuses to touch a database whose layer is newer than this code. See
 * backends/postgres/install.ts for how PostgreSQL does it.
 */
export async function install(target: SqlDriver | Backend): Promise<InstallResult> {
  const { backend } = await openBackend(target, { logger: defaultLogger() });
  return backend.install();
}
