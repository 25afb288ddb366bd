import { SuperduperError } from '../../errors.js';
import { openDatabase } from '../context.js';
import { keptBecause } from '../results.js';

export async function removeCommand(name: string, uri: string | undefined, options: { keepOutputs: boolean; cascade: boolean }): Promise<void> {
  const db = await openDatabase(uri);
  try {
    const results = await db.remove(name, options).catch((error: unknown) => {
      // The SQL layer's hint names its parameter; here it is an option.
      const hint = (error as { hint?: string }).hint;
      if (!hint?.includes('p_cascade')) throw error;
      throw new SuperduperError((error as Error).message, {
        hint: hint.replace(/pass p_cascade => true/, `run "npx superduper remove ${name} --cascade"`),
        cause: error,
      });
    });
    for (const result of results) {
      // An application's components another application holds are kept, not removed.
      const kept = result.action === 'kept' ? ` (${keptBecause(result)})` : '';
      process.stdout.write(`${result.type} ${result.name}: ${result.action}${result.outputs ? ` (outputs ${String(result.outputs)})` : ''}${kept}\n`);
    }
  } finally {
    await db.close();
  }
}
