// A streamed answer counts as a prediction in the model cache: a version
// retired while it streams is closed only once the stream ends.
import { expect, it } from 'vitest';
import { ModelCache } from '../../src/models/registry.js';
import type { LoadedModel, ModelRecord, ModelRuntime } from '../../src/models/types.js';

it('closes a retired version only after the stream running on it ends, and keeps models without stream as they are', async () => {
  const closed: string[] = [];
  let next: (() => void) | undefined;
  const runtime: ModelRuntime = {
    name: 'streaming',
    async load(model: ModelRecord): Promise<LoadedModel> {
      return {
        predict: async (inputs) => inputs.map(() => model.spec_hash),
        ...(model.spec_hash === 'plain'
          ? {}
          : {
              async *stream() {
                yield 'one ';
                await new Promise<void>((resolve) => (next = resolve));
                yield model.spec_hash;
              },
            }),
        close: async () => {
          closed.push(model.spec_hash);
        },
      };
    },
  };
  const cache = new ModelCache({ fetchArtifact: async () => new Uint8Array() });
  cache.addRuntime(runtime);
  const record = (hash: string): ModelRecord => ({ name: 'm', runtime: 'streaming', output: { type: 'text' }, config: {}, artifact: null, spec_hash: hash });

  const v1 = await cache.get(record('v1'));
  const pieces = v1.stream!('q')[Symbol.asyncIterator]();
  expect(await pieces.next()).toEqual({ done: false, value: 'one ' });
  const plain = await cache.get(record('plain')); // a newer version, while v1 streams
  expect(plain.stream).toBeUndefined();
  await new Promise((resolve) => setImmediate(resolve));
  expect(closed).toEqual([]);
  const second = pieces.next();
  await new Promise((resolve) => setImmediate(resolve));
  expect(closed).toEqual([]);
  next!();
  expect(await second).toEqual({ done: false, value: 'v1' });
  expect(await pieces.next()).toEqual({ done: true, value: undefined });
  await new Promise((resolve) => setImmediate(resolve));
  expect(closed).toEqual(['v1']);
  await cache.close();
});
