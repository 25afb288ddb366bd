import { ObjectId, type Document } from 'mongodb';
import { SuperduperError } from '../../errors.js';
import { RUNTIMES } from '../../generated/constants.js';
import type { ModelCallRequest, ModelCalls } from '../backend.js';
import { collection, type MongoContext } from './context.js';
import type { ModelDoc, RequestDoc } from './documents.js';
import { keyText, keyValue } from './keys.js';
import { COLLECTIONS } from './names.js';

/** How long a model call waits for a sidecar's answer. */
const ANSWER_TIMEOUT_MS = 30_000;
const POLL_MS = 5;
const LEASE_MS = 60_000;

/**
 * Model calls from the shell and from TypeScript's like() with a text query:
 * documents in superduper.requests that a sidecar claims (woken by the
 * capture's change stream, which sees the insert) and answers in place. The
 * caller polls its document; the mongosh snippet (mongosh/superduper.js) does
 * the same.
 */
export function mongoModelCalls(context: MongoContext): ModelCalls {
  // Untyped: a request's _id is any BSON value, which the driver's filter types cannot take.
  const requests = collection(context, COLLECTIONS.requests);
  const models = collection<ModelDoc>(context, COLLECTIONS.models);
  return {
    async open() {
      return {
        async claim(sidecarId, functions, limit, named) {
          const runnable = await models
            .find({ $or: [{ runtime: { $ne: RUNTIMES.process_local } }, { _id: { $in: [...functions] } }] })
            .toArray();
          const byName = new Map(runnable.map((m) => [m._id, m]));
          const claimed: ModelCallRequest[] = [];
          const now = new Date();
          const take = async (filter: Document) =>
            requests.findOneAndUpdate(
              { ...filter, model: { $in: [...byName.keys()] }, $or: [{ state: 'pending' }, { state: 'claimed', lease_until: { $lt: now } }] },
              { $set: { state: 'claimed', owner: sidecarId, lease_until: new Date(now.getTime() + LEASE_MS) } },
              { sort: { created_at: 1 }, returnDocument: 'after' },
            );
          if (named !== null) {
            const doc = await take({ _id: keyValue(named) });
            if (doc) claimed.push(request(doc as RequestDoc, byName.get(doc.model as string)!));
            return claimed;
          }
          while (claimed.length < limit) {
            const doc = await take({});
            if (!doc) break;
            claimed.push(request(doc as RequestDoc, byName.get(doc.model as string)!));
          }
          return claimed;
        },
        async answer(ids, results, errors) {
          const now = new Date();
          await requests.bulkWrite(
            ids.map((id, i) => ({
              updateOne: {
                filter: { _id: keyValue(id) },
                update:
                  errors[i] === null
                    ? { $set: { state: 'done' as const, value: JSON.parse(results[i] ?? 'null') as unknown, answered_at: now } }
                    : { $set: { state: 'failed' as const, error: errors[i]!, answered_at: now } },
              },
            })),
            { ordered: false },
          );
        },
        close() {},
      };
    },

    host() {
      throw new SuperduperError('MongoDB answers model calls through its sidecars, not through a host process');
    },

    async predict(model, input) {
      const doc = await models.findOne({ _id: model });
      if (!doc) throw new SuperduperError(`superduper.predict: no model named '${model}'`);
      const kind = doc.output.type === 'vector' ? 'embed' : 'predict';
      const id = new ObjectId();
      await requests.insertOne({ _id: id, model, kind, input, state: 'pending', created_at: new Date() });
      try {
        const deadline = Date.now() + ANSWER_TIMEOUT_MS;
        for (;;) {
          const answer = (await requests.findOne({ _id: id, state: { $in: ['done', 'failed'] } })) as RequestDoc | null;
          if (answer?.state === 'done') return answer.value;
          if (answer?.state === 'failed') throw new SuperduperError(`model "${model}" failed: ${answer.error}`);
          if (Date.now() > deadline) {
            throw new SuperduperError(`superduper.predict: no sidecar answered the call to model "${model}" within ${ANSWER_TIMEOUT_MS / 1000} s`, {
              hint: 'Is a sidecar running that can run this model? Start one with "npx superduper start <uri>".',
            });
          }
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      } finally {
        await requests.deleteOne({ _id: id }).catch(() => {});
      }
    },
  };
}

function request(doc: RequestDoc, model: ModelDoc): ModelCallRequest {
  return {
    id: keyText(doc._id),
    model: doc.model,
    kind: doc.kind,
    input: doc.input,
    record: { name: model.name, runtime: model.runtime, output: model.output, config: model.config, artifact: model.artifact, spec_hash: model.spec_hash },
  };
}
