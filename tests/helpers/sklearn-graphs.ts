import {
  encodeModel,
  floatsAttribute as floats,
  floatTensor,
  int64Tensor,
  type GraphParts,
  intAttribute as int,
  node as standardNode,
  onnx,
  stringAttribute as string,
  stringsAttribute as strings,
  tensorInfo,
} from '../../src/models/onnx-proto.js';

const { DataType } = onnx.TensorProto;

/** skl2onnx's graphs: the standard operators and the ai.onnx.ml ones. */
const encode = (graph: GraphParts) =>
  encodeModel(graph, { opsets: { '': 15, 'ai.onnx.ml': 1 }, producer: 'skl2onnx-shaped test graph', name: 'pipeline' });

/** Arguments in the order these graphs read best: the domain before the attributes. */
const node = (opType: string, input: string[], output: string[], domain = '', attributes: ReturnType<typeof int>[] = []) =>
  standardNode(opType, input, output, attributes, domain);

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
      int64Tensor('flat_shape', [2], [-1, cities.length]),
      floatTensor('weights', [cities.length + 1, 1], Float32Array.from([...base, perRoom])),
    ],
    inputs: [tensorInfo('city', DataType.STRING, ['N', 1]), tensorInfo('rooms', DataType.INT64, ['N', 1])],
    outputs: [tensorInfo('variable', DataType.FLOAT, ['N', 1])],
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
