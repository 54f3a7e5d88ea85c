/**
 * Kernels that training needs from the tfjs 4.22 wasm backend, which lacks one and copies in another.
 *
 * - The gradient of `gather` is an `UnsortedSegmentSum`, which the wasm backend does not implement (the trainer
 *   gathers each image's vision activations for its prompts, so full fine-tuning needs it); a plain TypeScript
 *   version working on the backend's heap arrays is registered when this module loads.
 * - Every tensor a kernel saves for its gradient is cloned, and the wasm backend's `Identity` copies the values,
 *   where the cpu backend's shares them (a reference count, as the wasm `Reshape` does). Under a gradient tape each
 *   saved activation then existed twice while its layer ran, and once more per extra kernel that saved it: in a
 *   batch-8 decoder step of rd64-refined, 350 of the 1170 MB of tensors alive at the peak (measured). Tensors are
 *   immutable (a variable's `assign` swaps its data rather than writing into it), so sharing is safe.
 *   `useSharingIdentity` installs the sharing version once the wasm backend's own kernels are registered (they
 *   would replace one installed earlier); `linearProduct`, on every model's forward path, calls it.
 *
 * Other backends keep their own kernels.
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

let sharing = false;

/** Replaces the wasm backend's copying `Identity` once that backend is active; a flag test afterwards. */
export function useSharingIdentity(): void {
  if (sharing || tf.getBackend() !== 'wasm') return;
  const own = tf.getKernel('Identity', 'wasm');
  if (own !== undefined) tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ kernelName: 'Identity', backendName: 'wasm', kernelFunc: sharingIdentity as unknown as tf.KernelFunc });
  sharing = true;
}
