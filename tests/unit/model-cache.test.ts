// The model cache of a sidecar process: one load per model version, and older
// versions closed once a newer one is loaded and they are idle (no database needed).
import { describe, expect, it } from 'vitest';
import { ModelCache } from '../../src/models/registry.js';
import type { LoadedModel, ModelRecord, ModelRuntime } from '../../src/models/types.js';

/** A runtime whose models answer when the test says so, and record their closing. */
function slowRuntime() {
  const closed: string[] = [];
  const gates: Array<() => void> = [];
  const runtime: ModelRuntime = {
    name: 'slow',
    async load(model: ModelRecord): Promise<LoadedModel> {
      return {
        predict: (inputs) => new Promise((resolve) => gates.push(() => resolve(inputs.map(() => model.spec_hash)))),
        close: async () => {
          closed.push(model.spec_hash);
        },
      };
    },
  };
  return { runtime, closed, release: () => gates.splice(0).forEach((open) => open()) };
}

const record = (hash: string): ModelRecord => ({ name: 'm', runtime: 'slow', output: { type: 'text' }, config: {}, artifact: null, spec_hash: hash });

describe('ModelCache', () => {
  it('loads a version once, and closes an older version when a newer one loads, after its last prediction', async () => {
    const { runtime, closed, release } = slowRuntime();
    const cache = new ModelCache({ fetchArtifact: async () => new Uint8Array() });
    cache.addRuntime(runtime);

    const v1 = await cache.get(record('v1'));
    await cache.get(record('v1'));
    expect(cache.loads).toHaveLength(1);

    const running = v1.predict(['a']); // a prediction on v1 still running...
    const v2 = await cache.get(record('v2')); // ...when v2 loads
    expect(closed).toEqual([]); // v1 is busy: not closed under it
    release();
    expect(await running).toEqual(['v1']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toEqual(['v1']);
    expect(cache.retired).toEqual([{ model: 'm', specHash: 'v1' }]);

    const answer = v2.predict(['b']);
    release();
    expect(await answer).toEqual(['v2']);
    await cache.close();
    expect(closed).toEqual(['v1', 'v2']);
  });

  it('closes an idle older version at once', async () => {
    const { runtime, closed } = slowRuntime();
    const cache = new ModelCache({ fetchArtifact: async () => new Uint8Array() });
    cache.addRuntime(runtime);
    await cache.get(record('v1'));
    await cache.get(record('v2'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toEqual(['v1']);
    await cache.close();
  });
});
