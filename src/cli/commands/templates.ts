import { galleryTemplates } from '../../packages/gallery.js';

/** superduper templates: the gallery, each with its variables (required ones have no default). */
export async function templatesCommand(options: { json: boolean }): Promise<void> {
  const templates = await galleryTemplates();
  if (options.json) {
    process.stdout.write(`${JSON.stringify(templates, null, 2)}\n`);
    return;
  }
  for (const template of templates) {
    process.stdout.write(`${template.name}: ${template.summary}\n`);
    for (const [name, variable] of Object.entries(template.variables)) {
      const given = variable.default === undefined ? 'required' : `default ${JSON.stringify(variable.default)}`;
      process.stdout.write(`  --var ${name}=<${variable.type ?? 'text'}>  (${given})${variable.description ? ` ${variable.description}` : ''}\n`);
    }
  }
  process.stdout.write('\nApply one with: superduper apply <template> [uri] --var name=value ...  (see its README in the templates folder)\n');
}
