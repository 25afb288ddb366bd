import { openDatabase } from '../context.js';
import { keptBecause } from '../results.js';

export async function removeCommand(name: string, uri: string | undefined, options: { keepOutputs: boolean; cascade: boolean }): Promise<void> {
  const db = await openDatabase(uri);
  try {
    for (const result of await db.remove(name, options)) {
      // An application's components another application holds are kept, not removed.
      const kept = result.action === 'kept' ? ` (${keptBecause(result)})` : '';
      process.stdout.write(`${result.type} ${result.name}: ${result.action}${result.outputs ? ` (outputs ${String(result.outputs)})` : ''}${kept}\n`);
    }
  } finally {
    await db.close();
  }
}
