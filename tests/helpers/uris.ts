/** The project's test cluster (scripts/pg.sh); SUPERDUPER_TEST_URI points elsewhere. */
export function adminUri(): string {
  return process.env.SUPERDUPER_TEST_URI ?? 'postgres://postgres@127.0.0.1:54329/postgres';
}

/**
 * The template database each test file clones: named by the global setup after
 * the SQL it was built from, so that test runs at once (of one tree or of
 * several) share or keep apart their templates instead of dropping each other's.
 */
export const TEMPLATE_DATABASE = process.env.SUPERDUPER_TEST_TEMPLATE ?? 'superduper_test_template';

export function uriFor(database: string): string {
  const url = new URL(adminUri());
  url.pathname = `/${database}`;
  return url.toString();
}

/** The embedded template: a PGlite database with superduper installed, dumped by the global setup. */
export const PGLITE_TEMPLATE_FILE = new URL(`../../.pg/pglite-${TEMPLATE_DATABASE}.tar`, import.meta.url).pathname;
