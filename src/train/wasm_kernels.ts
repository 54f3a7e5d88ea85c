/**
 * Kernels that training needs and the tfjs 4.22 wasm backend lacks. The gradient of `gather` (token and position
 * embedding lookups, hence full fine-tuning of the text tower) is an `UnsortedSegmentSum`, which the wasm backend
 * does not implement; this registers a plain TypeScript version that works on the backend's heap arrays.
 * Importing the module registers it once; other backends keep their own kernels.
 */
import * as tf from '@tensorflow/tfjs';

interface HeapTensor {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): HeapTensor;
  typedArrayFromHeap(info: HeapTensor): Float32Array | Int32Array | Uint8Array;
}

/** out[segmentIds[i], ...] += x[i, ...] over the leading `segmentIds.rank` axes; ids outside [0, numSegments) are dropped, as in TensorFlow. */
function unsortedSegmentSum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x as HeapTensor;
  const ids = args.inputs.segmentIds as HeapTensor;
  const numSegments = args.attrs.numSegments as number;
  const outer = ids.shape.reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(ids.shape.length).reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([numSegments, ...x.shape.slice(ids.shape.length)], x.dtype);
  const values = backend.typedArrayFromHeap(out);
  values.fill(0);
  const xs = backend.typedArrayFromHeap(x);
  const segments = backend.typedArrayFromHeap(ids);
  for (let i = 0; i < outer; i++) {
    const s = segments[i]!;
    if (s < 0 || s >= numSegments) continue;
    const from = i * inner;
    const to = s * inner;
    for (let j = 0; j < inner; j++) values[to + j] += xs[from + j]!;
  }
  return out as unknown as tf.TensorInfo;
}

if (tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc });
}
