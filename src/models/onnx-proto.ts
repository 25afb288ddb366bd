import onnxProto from 'onnx-proto';

/**
 * The pieces of an ONNX graph built in code (onnx-proto's protobuf classes, in
 * short forms): what onnx-builder.ts, tests/fixtures/hf-graphs.ts and the tests' and
 * benchmarks' graphs are written with. Nothing here runs a model.
 */
export const { onnx } = onnxProto;
export const { FLOAT, INT64, STRING } = onnx.TensorProto.DataType;

export type OnnxNode = InstanceType<typeof onnx.NodeProto>;
export type OnnxTensor = InstanceType<typeof onnx.TensorProto>;
export type OnnxValueInfo = InstanceType<typeof onnx.ValueInfoProto>;
export type OnnxAttribute = InstanceType<typeof onnx.AttributeProto>;

export interface GraphParts {
  nodes: OnnxNode[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  initializers?: OnnxTensor[];
}

/** A model of one graph, serialized; opsets: domain → version (default: the standard operators at 13). */
export function encodeModel(graph: GraphParts, options: { opsets?: Record<string, number>; producer?: string; name?: string } = {}): Uint8Array {
  const opsets = options.opsets ?? { '': 13 };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: options.producer ?? 'superduper',
    opsetImport: Object.entries(opsets).map(([domain, version]) => onnx.OperatorSetIdProto.create({ domain, version })),
    graph: onnx.GraphProto.create({
      name: options.name ?? 'superduper',
      node: graph.nodes,
      initializer: graph.initializers ?? [],
      input: graph.inputs,
      output: graph.outputs,
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** A node named after its first output (names must be unique, outputs are). */
export function node(opType: string, input: string[], output: string[], attribute: OnnxAttribute[] = [], domain = ''): OnnxNode {
  return onnx.NodeProto.create({ opType, input, output, attribute, domain, name: `${opType}_${output[0]}` });
}

const { AttributeType } = onnx.AttributeProto;
const utf8 = (text: string) => new TextEncoder().encode(text);

export const intAttribute = (name: string, i: number) => onnx.AttributeProto.create({ name, type: AttributeType.INT, i });
export const intsAttribute = (name: string, ints: number[]) => onnx.AttributeProto.create({ name, type: AttributeType.INTS, ints });
export const floatsAttribute = (name: string, floats: number[]) => onnx.AttributeProto.create({ name, type: AttributeType.FLOATS, floats });
export const stringAttribute = (name: string, s: string) => onnx.AttributeProto.create({ name, type: AttributeType.STRING, s: utf8(s) });
export const stringsAttribute = (name: string, values: string[]) =>
  onnx.AttributeProto.create({ name, type: AttributeType.STRINGS, strings: values.map(utf8) });

export function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTensor {
  if (values.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${name}: ${values.length} values for shape [${dims.join(', ')}]`);
  return onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
}

export function int64Tensor(name: string, dims: number[], values: number[]): OnnxTensor {
  return onnx.TensorProto.create({ name, dims, dataType: INT64, int64Data: values });
}

/** A tensor input or output; a string dimension is symbolic (batch, sequence). */
export function tensorInfo(name: string, elemType: number, shape: Array<number | string>): OnnxValueInfo {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape: onnx.TensorShapeProto.create({
          dim: shape.map((d) => onnx.TensorShapeProto.Dimension.create(typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
}
