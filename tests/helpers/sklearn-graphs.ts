import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

/**
 * ONNX graphs shaped like the ones skl2onnx writes for scikit-learn models (no
 * Python here to export real ones): the ai.onnx.ml operators, the input and
 * output names skl2onnx uses, and its default ZipMap over class probabilities.
 */

/** LogisticRegression: float_input [N, d] → output_label [N] (string), output_probability (seq of maps). */
export function logisticRegressionGraph(options: { classes: string[]; coefficients: number[][]; intercepts: number[] }): Uint8Array {
  const { classes, coefficients, intercepts } = options;
  const features = coefficients[0]!.length;
  return encode({
    nodes: [
      node('LinearClassifier', ['float_input'], ['label', 'probability_tensor'], 'ai.onnx.ml', [
        strings('classlabels_strings', classes),
        floats('coefficients', coefficients.flat()),
        floats('intercepts', intercepts),
        int('multi_class', 1),
        string('post_transform', 'LOGISTIC'),
      ]),
      node('Normalizer', ['probability_tensor'], ['probabilities'], 'ai.onnx.ml', [string('norm', 'L1')]),
      node('Identity', ['label'], ['output_label']),
      node('ZipMap', ['probabilities'], ['output_probability'], 'ai.onnx.ml', [strings('classlabels_strings', classes)]),
    ],
    inputs: [tensorInfo('float_input', DataType.FLOAT, ['N', features])],
    outputs: [tensorInfo('output_label', DataType.STRING, ['N']), zipMapInfo('output_probability')],
  });
}

/** LinearRegression: float_input [N, d] → variable [N, 1]. */
export function linearRegressionGraph(options: { coefficients: number[]; intercept: number }): Uint8Array {
  return encode({
    nodes: [
      node('LinearRegressor', ['float_input'], ['variable'], 'ai.onnx.ml', [
        floats('coefficients', options.coefficients),
        floats('intercepts', [options.intercept]),
      ]),
    ],
    inputs: [tensorInfo('float_input', DataType.FLOAT, ['N', options.coefficients.length])],
    outputs: [tensorInfo('variable', DataType.FLOAT, ['N', 1])],
  });
}

/**
 * A pipeline with two named inputs, as skl2onnx writes for a ColumnTransformer:
 * city (string [N, 1]) one-hot encoded, rooms (int64 [N, 1]) as a number;
 * price = base[city] + perRoom × rooms.
 */
export function housePriceGraph(options: { cities: string[]; base: number[]; perRoom: number }): Uint8Array {
  const { cities, base, perRoom } = options;
  return encode({
    nodes: [
      node('OneHotEncoder', ['city'], ['city_onehot'], 'ai.onnx.ml', [strings('cats_strings', cities), int('zeros', 1)]),
      node('Reshape', ['city_onehot', 'flat_shape'], ['city_matrix']),
      node('Cast', ['rooms'], ['rooms_float'], '', [int('to', DataType.FLOAT)]),
      node('Concat', ['city_matrix', 'rooms_float'], ['features'], '', [int('axis', 1)]),
      node('MatMul', ['features', 'weights'], ['variable']),
    ],
    initializers: [
      onnx.TensorProto.create({ name: 'flat_shape', dims: [2], dataType: DataType.INT64, int64Data: [-1, cities.length] }),
      onnx.TensorProto.create({ name: 'weights', dims: [cities.length + 1, 1], dataType: DataType.FLOAT, floatData: [...base, perRoom] }),
    ],
    inputs: [tensorInfo('city', DataType.STRING, ['N', 1]), tensorInfo('rooms', DataType.INT64, ['N', 1])],
    outputs: [tensorInfo('variable', DataType.FLOAT, ['N', 1])],
  });
}

type Node = InstanceType<typeof onnx.NodeProto>;
type Attribute = InstanceType<typeof onnx.AttributeProto>;

function encode(graph: {
  nodes: Node[];
  inputs: InstanceType<typeof onnx.ValueInfoProto>[];
  outputs: InstanceType<typeof onnx.ValueInfoProto>[];
  initializers?: InstanceType<typeof onnx.TensorProto>[];
}): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'skl2onnx-shaped test graph',
    opsetImport: [
      onnx.OperatorSetIdProto.create({ domain: '', version: 15 }),
      onnx.OperatorSetIdProto.create({ domain: 'ai.onnx.ml', version: 1 }),
    ],
    graph: onnx.GraphProto.create({
      name: 'pipeline',
      node: graph.nodes,
      input: graph.inputs,
      output: graph.outputs,
      initializer: graph.initializers ?? [],
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

function node(opType: string, input: string[], output: string[], domain = '', attribute: Attribute[] = []): Node {
  return onnx.NodeProto.create({ opType, input, output, domain, attribute, name: `${opType}_${output[0]}` });
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const int = (name: string, i: number) => onnx.AttributeProto.create({ name, type: AttributeType.INT, i });
const string = (name: string, s: string) => onnx.AttributeProto.create({ name, type: AttributeType.STRING, s: utf8(s) });
const strings = (name: string, values: string[]) => onnx.AttributeProto.create({ name, type: AttributeType.STRINGS, strings: values.map(utf8) });
const floats = (name: string, values: number[]) => onnx.AttributeProto.create({ name, type: AttributeType.FLOATS, floats: values });

function tensorInfo(name: string, elemType: number, shape: Array<number | string>) {
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

/** seq(map(string, float)), the type of ZipMap's output. */
function zipMapInfo(name: string) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      sequenceType: onnx.TypeProto.Sequence.create({
        elemType: onnx.TypeProto.create({
          mapType: onnx.TypeProto.Map.create({
            keyType: DataType.STRING,
            valueType: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: DataType.FLOAT }) }),
          }),
        }),
      }),
    }),
  });
}
