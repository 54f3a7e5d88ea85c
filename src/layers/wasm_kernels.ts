/**
 * Kernels the models need from the tfjs 4.22 wasm backend, which lacks one and copies too much in two others.
 *
 * - The gradient of `gather` is an `UnsortedSegmentSum`, which the wasm backend does not implement (the trainer
 *   gathers each image's vision activations for its prompts, so full fine-tuning needs it); a plain TypeScript
 *   version working on the backend's heap arrays is registered when this module loads.
 * - Every tensor a kernel saves for its gradient is cloned, and the wasm backend's `Identity` copies the values,
 *   where the cpu backend's shares them (a reference count, as the wasm `Reshape` does). Under a gradient tape each
 *   saved activation then existed twice while its layer ran, and once more per extra kernel that saved it: in a
 *   batch-8 decoder step of rd64-refined, 350 of the 1170 MB of tensors alive at the peak (measured). Tensors are
 *   immutable (a variable's `assign` swaps its data rather than writing into it), so sharing is safe.
 * - The wasm `Unpack` (`tf.unstack`, which splits the batch rows and the heads of the attention) slices each piece
 *   with a JavaScript kernel that first copies the whole input out of the heap: n pieces, n copies. Its replacement
 *   copies each piece once, straight from heap to heap: [16, 785, 64] into 16 rows, 62 ms -> 0.7 ms.
 *
 * `useWasmKernels` installs the last two once the wasm backend's own kernels are registered (they would replace
 * ones installed earlier); `linearProduct`, on every model's forward path, calls it. Other backends keep their own
 * kernels.
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
  incRef(dataId: object): void;
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

/** The same values under a new handle: one more reference to the input's memory. */
function sharingIdentity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = args.inputs.x as HeapTensor;
  (args.backend as WasmBackendLike).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype } as unknown as tf.TensorInfo;
}

/**
 * `tf.unstack` along any axis: piece i takes, from each of the `outer` blocks before the axis, the i-th run of
 * `inner` values after it. Strings and complex numbers go to the backend's own kernel.
 */
function unpackKernel(own: tf.KernelFunc): tf.KernelFunc {
  return ((args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }) => {
    const value = args.inputs.value as HeapTensor;
    if (value.dtype === 'string' || value.dtype === 'complex64') return own(args as unknown as Parameters<tf.KernelFunc>[0]);
    const backend = args.backend as WasmBackendLike;
    const rank = value.shape.length;
    const requested = args.attrs.axis as number;
    const axis = requested < 0 ? requested + rank : requested;
    const count = value.shape[axis]!;
    const outer = value.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = value.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const pieceShape = value.shape.filter((_, i) => i !== axis);
    const pieces = Array.from({ length: count }, () => backend.makeOutput(pieceShape, value.dtype));
    // Views are taken after the allocations, which may have grown (and so moved) the heap.
    const source = backend.typedArrayFromHeap(value);
    for (const [i, piece] of pieces.entries()) {
      const target = backend.typedArrayFromHeap(piece);
      for (let o = 0; o < outer; o++) {
        const from = (o * count + i) * inner;
        target.set(source.subarray(from, from + inner), o * inner);
      }
    }
    return pieces as unknown as tf.TensorInfo[];
  }) as unknown as tf.KernelFunc;
}

let installed = false;

/** Replaces the wasm backend's copying `Identity` and `Unpack` once that backend is active; a flag test afterwards. */
export function useWasmKernels(): void {
  if (installed || tf.getBackend() !== 'wasm') return;
  replaceKernel('Identity', sharingIdentity as unknown as tf.KernelFunc);
  const ownUnpack = tf.getKernel('Unpack', 'wasm')?.kernelFunc;
  if (ownUnpack !== undefined) replaceKernel('Unpack', unpackKernel(ownUnpack));
  installed = true;
}

function replaceKernel(name: string, kernelFunc: tf.KernelFunc): void {
  if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
}
