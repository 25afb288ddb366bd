import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** A graph output that onnxruntime-node cannot return, and how to rebuild it. */
export interface ZipMapOutput {
  /** The graph output ZipMap produced (a sequence of maps). */
  name: string;
  /** ZipMap's input, exposed as an extra output: a [rows, classes] tensor. */
  tensor: string;
  /** The class labels, in the tensor's column order. */
  labels: Array<string | number>;
}

/**
 * onnxruntime-node returns tensors only ("Non tensor type is temporarily not
 * supported"), but scikit-learn models exported by skl2onnx end, by default, in
 * a ZipMap node whose output is a sequence of {class: probability} maps. This
 * exposes each such ZipMap's input tensor as a graph output instead, so the
 * probabilities can be read and zipped with the labels in JavaScript.
 * Returns the bytes unchanged when there is nothing to rewrite.
 */
export function exposeZipMapInputs(bytes: Uint8Array): { bytes: Uint8Array; zipMaps: ZipMapOutput[] } {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) return { bytes, zipMaps: [] };
  const zipMaps: ZipMapOutput[] = [];
  const outputs = graph.output ?? [];
  for (const node of graph.node ?? []) {
    const [output] = node.output ?? [];
    const [input] = node.input ?? [];
    if (node.opType !== 'ZipMap' || !output || !input) continue;
    if (!outputs.some((o) => o.name === output)) continue;
    const strings = node.attribute?.find((a) => a.name === 'classlabels_strings');
    const ints = node.attribute?.find((a) => a.name === 'classlabels_int64s');
    const labels = strings ? (strings.strings ?? []).map((s) => Buffer.from(s).toString('utf8')) : (ints?.ints ?? []).map((i) => Number(i));
    zipMaps.push({ name: output, tensor: input, labels });
  }
  if (zipMaps.length === 0) return { bytes, zipMaps };
  graph.output = [
    ...outputs.filter((o) => !zipMaps.some((zip) => zip.name === o.name)),
    ...zipMaps.map((zip) => onnx.ValueInfoProto.create({ name: zip.tensor })),
  ];
  return { bytes: onnx.ModelProto.encode(model).finish(), zipMaps };
}
