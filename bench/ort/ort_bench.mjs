// Images per second of ONNX Runtime (CPU) on an ONNX classifier, fed uniform random inputs of
// the model's input shape: the peer measured beside `lowbit bench` by bench/engine_vs_ort.sh.
// Usage: node ort_bench.mjs MODEL BATCH THREADS SECONDS
import ort from 'onnxruntime-node';

const [model, batchArg, threadsArg, secondsArg] = process.argv.slice(2);
const batch = Number(batchArg), threads = Number(threadsArg), seconds = Number(secondsArg ?? 3);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
});
const meta = session.inputMetadata?.[0];
const inputName = session.inputNames[0];
let dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1)) : null;
if (!dims) throw new Error('cannot read the input shape');
dims[0] = batch;
const size = dims.reduce((a, b) => a * b, 1);
let seed = 12345;
const data = new Float32Array(size);
for (let i = 0; i < size; ++i) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  data[i] = (seed / 2 ** 32) * 2 - 1;
}
const feeds = { [inputName]: new ort.Tensor('float32', data, dims) };
for (let i = 0; i < 2; ++i) await session.run(feeds);
let runs = 0;
const start = process.hrtime.bigint();
let elapsed = 0;
while (elapsed < seconds || runs < 3) {
  await session.run(feeds);
  ++runs;
  elapsed = Number(process.hrtime.bigint() - start) / 1e9;
}
console.log(`images/s ${(runs * batch / elapsed).toFixed(1)}`);
