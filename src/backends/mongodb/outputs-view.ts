import { MongoServerError } from 'mongodb';
import type { MongoContext } from './context.js';
import { ignoreCode } from './install.js';

/**
 * Points a listener's outputs view (superduper.outputs.<name>) at one
 * version's collection in one step (collMod, on a view: its viewOn and
 * pipeline are replaced together), creating the view when there is none. So
 * a reader sees the old version's outputs or the new one's, never no
 * collection: dropping and creating the view again left a moment with none,
 * and a promotion's reader saw no outputs.
 */
export async function pointOutputsView(context: MongoContext, view: string, target: string): Promise<void> {
  try {
    await context.db.command({ collMod: view, viewOn: target, pipeline: [] });
  } catch (error) {
    // 26 NamespaceNotFound: no view yet.
    if (!(error instanceof MongoServerError && error.code === 26)) throw error;
    await context.db.createCollection(view, { viewOn: target, pipeline: [] }).catch(ignoreCode(48));
  }
}
