import { openDatabase } from '../context.js';

export async function removeCommand(name: string, uri: string | undefined, options: { keepOutputs: boolean; cascade: boolean }): Promise<void> {
  const db = await openDatabase(uri);
  try {
    for (const result of await db.remove(name, options)) {
      process.stdout.write(`${result.type} ${result.name}: removed${result.outputs ? ` (outputs ${String(result.outputs)})` : ''}\n`);
    }
  } finally {
    await db.close();
  }
}
