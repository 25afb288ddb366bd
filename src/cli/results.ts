import type { ApplyResult, PlanResult } from '../backends/types.js';

/**
 * What apply did, or what a plan says it would do, a line per component
 * ("listener docs_embedding: created (version 1), 1234 existing row(s) to compute"), an
 * application's components indented under it.
 */
export function resultLines(results: ReadonlyArray<ApplyResult | PlanResult>, indent = ''): string[] {
  const lines: string[] = [];
  for (const result of results) {
    const rows = typeof result.rows === 'number' ? result.rows : result.backfill;
    const index = result.type === 'vector_index';
    const notes: string[] = [];
    if (typeof result.tokens_estimate === 'number') notes.push(`about ${result.tokens_estimate} tokens sent to its model`);
    if (result.action === 'kept') notes.push(keptBecause(result));
    if (result.action === 'rebuilding') {
      notes.push(
        index
          ? 'a sidecar builds its new graph beside the current one, which answers searches until then'
          : 'its outputs are replaced when the new version is complete',
      );
    }
    lines.push(
      `${indent}${result.type} ${result.name}: ${result.action}` +
        (result.version ? ` (version ${result.version})` : '') +
        (typeof rows === 'number' && rows > 0 ? `, ${rows} ${index ? 'vector(s) to index' : 'existing row(s) to compute'}` : '') +
        (notes.length > 0 ? `; ${notes.join('; ')}` : ''),
    );
    if (result.components) lines.push(...resultLines(result.components, `${indent}  `));
  }
  return lines;
}

/** The components of a plan that remove or replace outputs, as "listener docs_embedding (rebuilding)". */
export function destructiveParts(plan: readonly PlanResult[]): string[] {
  return plan.flatMap((result) =>
    result.components ? destructiveParts(result.components) : result.destructive ? [`${result.type} ${result.name} (${result.action})`] : [],
  );
}

/** Why an application let go of a component without removing it. */
export function keptBecause(result: ApplyResult): string {
  return result.held_by ? `application(s) ${String(result.held_by)} hold it too` : `still used by ${String(result.used_by)}`;
}
