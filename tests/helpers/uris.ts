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
