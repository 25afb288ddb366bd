import { openDatabase } from '../context.js';

/** superduper export <application> <target> [uri]: the application as a package. */
export async function exportCommand(name: string, target: string, uri: string | undefined): Promise<void> {
  const db = await openDatabase(uri);
  try {
    const document = await db.exportApplication(name, target);
    const files = Object.values(document.files);
    const bytes = files.reduce((sum, file) => sum + file.bytes, 0);
    process.stdout.write(
      `application ${name}: exported to ${target} (${files.length} file(s), ${bytes} bytes` +
        (document.functions.length > 0 ? `; function model(s) ${document.functions.join(', ')} to be provided where it is applied` : '') +
        ')\n',
    );
  } finally {
    await db.close();
  }
}
