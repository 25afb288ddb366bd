/** The project's test cluster (scripts/pg.sh); SUPERDUPER_TEST_URI points elsewhere. */
export function adminUri(): string {
  return process.env.SUPERDUPER_TEST_URI ?? 'postgres://postgres@127.0.0.1:54329/postgres';
}

export const TEMPLATE_DATABASE = 'superduper_test_template';

export function uriFor(database: string): string {
  const url = new URL(adminUri());
  url.pathname = `/${database}`;
  return url.toString();
}

/** Which database the shared tests run on: the PostgreSQL server (default) or the embedded PGlite. */
export function testBackend(): 'postgres' | 'pglite' {
  return process.env.SUPERDUPER_TEST_BACKEND === 'pglite' ? 'pglite' : 'postgres';
}

/** The embedded template: a PGlite database with superduper installed, dumped by the global setup. */
export const PGLITE_TEMPLATE_FILE = new URL('../../.pg/pglite-template.tar', import.meta.url).pathname;
