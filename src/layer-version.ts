import { codeVersion, migrations } from './generated/sql.js';

/** What superduper._layer_version() says of the SQL layer installed in a database. */
export interface LayerVersion {
  code_version: string | null;
  migration: number | null;
}

/** The last migration this code ships. */
export const latestMigration = migrations.at(-1)?.version ?? 0;

/**
 * How a database's layer compares with this code: 'newer' (installed by a newer
 * superduper: this code must not touch it), 'older' (needs "superduper install"),
 * or 'same'.
 */
export function compareLayer(layer: LayerVersion): 'newer' | 'older' | 'same' {
  const migration = layer.migration ?? 0;
  if (migration > latestMigration) return 'newer';
  if (layer.code_version && compareVersions(layer.code_version, codeVersion) > 0) return 'newer';
  if (migration < latestMigration) return 'older';
  if (!layer.code_version || compareVersions(layer.code_version, codeVersion) < 0) return 'older';
  return 'same';
}

/** "code 0.1.0, migration 5", for messages. */
export function describeLayer(layer: LayerVersion): string {
  return `code ${layer.code_version ?? '?'}, migration ${layer.migration ?? 'none'}`;
}

export function describeCode(): string {
  return `code ${codeVersion}, migration ${latestMigration}`;
}

/** Compares dotted numeric versions ("0.10.2" > "0.9.9"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  const pb = b.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return Math.sign(diff);
  }
  return 0;
}
