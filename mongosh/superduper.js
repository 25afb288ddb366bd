// superduper in mongosh: search, embed, apply and status without TypeScript.
//
//   mongosh "mongodb://host/db" --file node_modules/superduper/mongosh/superduper.js --shell
//   > superduper.like('docs_search', 'how do I reset my password', 5)
//
// or, inside a session: load('node_modules/superduper/mongosh/superduper.js').
// Text is embedded by a running sidecar ("superduper start <uri>"): this script
// inserts a request into superduper.requests and waits for the answer, the way
// superduper.like() in SQL asks a sidecar through the database. See
// docs/mongodb.md.

// eslint-disable-next-line no-unused-vars
var superduper = (function () {
  const requests = () => db.getCollection('superduper.requests');

  function fail(message, hint) {
    throw new Error('superduper: ' + message + (hint ? '\nhint: ' + hint : ''));
  }

  function waitFor(collection, id, done, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const doc = collection.findOne({ _id: id });
      if (doc && done(doc)) return doc;
      if (Date.now() > deadline) fail(what + ' had no answer within ' + timeoutMs / 1000 + ' s', 'Is a sidecar running? Start one with "superduper start <uri>".');
      sleep(5);
    }
  }

  /** A model's output for one input, computed by a sidecar. */
  function embed(model, input, options) {
    const timeoutMs = (options && options.timeoutMs) || 30000;
    const found = db.getCollection('superduper.models').findOne({ _id: model });
    if (!found) fail('no model named ' + JSON.stringify(model), 'See db.getCollection("superduper.models").find().');
    const id = new ObjectId();
    requests().insertOne({ _id: id, model: model, kind: found.output.type === 'vector' ? 'embed' : 'predict', input: input, state: 'pending', created_at: new Date() });
    try {
      const answer = waitFor(requests(), id, (doc) => doc.state === 'done' || doc.state === 'failed', timeoutMs, 'model "' + model + '"');
      if (answer.state === 'failed') fail('model "' + model + '" failed: ' + answer.error);
      return answer.value;
    } finally {
      requests().deleteOne({ _id: id });
    }
  }

  function index(name) {
    const found = db.getCollection('superduper.vector_indexes').findOne({ _id: name });
    if (!found) fail('no vector index named ' + JSON.stringify(name), 'See db.getCollection("superduper.vector_indexes").find().');
    const listener = db.getCollection('superduper.listeners').findOne({ name: found.listener, state: { $in: ['current', 'frozen'] } });
    if (!listener) fail('vector index "' + name + '": listener "' + found.listener + '" has no current version');
    return { spec: found, listener: listener };
  }

  /**
   * The aggregation stages of an exact search, to run on the listener's
   * outputs (superduper.outputs.<listener>), composable with your own
   * ($lookup, $match...). query: a text (embedded by a sidecar) or a vector.
   */
  function pipeline(name, query, k, filter) {
    const found = index(name);
    const vector = typeof query === 'string' ? embed(found.spec.query_model || found.listener.model, query) : query;
    const fill = (node) => {
      if (node === found.spec.query_placeholder) return vector;
      if (Array.isArray(node)) return node.map(fill);
      // (Documents read in mongosh are not all plain objects: skip BSON values only.)
      if (node && typeof node === 'object' && !node._bsontype && !(node instanceof Date)) {
        const out = {};
        for (const key of Object.keys(node)) out[key] = fill(node[key]);
        return out;
      }
      return node;
    };
    const stages = [];
    if (filter && Object.keys(filter).length > 0) {
      // Pre-filter on the source documents' fields, joined by _id.
      const onSource = {};
      for (const key of Object.keys(filter)) onSource[key.startsWith('$') ? key : 'source.' + key] = filter[key];
      stages.push({ $lookup: { from: found.listener.collection, localField: '_id', foreignField: '_id', as: 'source' } }, { $match: onSource });
    }
    return stages.concat(fill(found.spec.score_stages), [{ $sort: { score: -1, _id: 1 } }, { $limit: k || 10 }, { $project: { _id: 1, score: 1 } }]);
  }

  /** The k documents nearest to a text or a vector, best first, each with its score and source document. */
  function like(name, query, k, filter) {
    const found = index(name);
    const stages = pipeline(name, query, k, filter).concat([
      { $lookup: { from: found.listener.collection, localField: '_id', foreignField: '_id', as: 'document' } },
      { $unwind: '$document' },
    ]);
    return db.getCollection(found.listener.outputs_view).aggregate(stages).toArray();
  }

  /** Declares a component (a spec as in docs/mongodb.md) and waits for a sidecar to apply it. */
  function apply(spec, options) {
    const timeoutMs = (options && options.timeoutMs) || 60000;
    const components = db.getCollection('superduper.components');
    const id = components.insertOne(spec).insertedId;
    const doc = waitFor(components, id, (d) => d.status === 'applied' || d.status === 'failed', timeoutMs, 'applying ' + JSON.stringify(spec.name));
    if (doc.status === 'failed') fail(doc.error, doc.hint);
    return doc.result;
  }

  return {
    embed: embed,
    pipeline: pipeline,
    like: like,
    apply: apply,
    status: () => db.getCollection('superduper.status').find().toArray(),
    failures: (listener) => db.getCollection('superduper.failures').find(listener ? { listener: listener } : {}).toArray(),
  };
})();
