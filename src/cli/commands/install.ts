import { openDatabase } from '../context.js';

export async function installCommand(uri: string | undefined): Promise<void> {
  const db = await openDatabase(uri, { requireInstalled: false });
  try {
    const result = await db.install();
    for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
    const what = result.applied.length > 0 ? `applied migration(s) ${result.applied.join(', ')}` : 'already up to date';
    process.stdout.write(
      `superduper ${result.codeVersion} installed (${what}; via ${result.via}); ` +
        `pgvector ${result.extensions.vector}, dblink ${result.extensions.dblink ?? 'not available'}\n`,
    );
  } finally {
    await db.close();
  }
}
