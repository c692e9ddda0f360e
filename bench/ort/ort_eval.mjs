// Top-1 / top-5 of ONNX Runtime (CPU) on inputs written by `lowbit eval --dump-inputs DIR`:
// the same preprocessed images and labels lowbit evaluated.
// Usage: node ort_eval.mjs MODEL DIR [THREADS] [BATCH]   prints "top-1 X %" and "top-5 Y %"
import fs from 'node:fs';
import ort from 'onnxruntime-node';

const [model, dir, threadsArg, batchArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2), batch = Number(batchArg ?? 32);
const info = JSON.parse(fs.readFileSync(`${dir}/inputs.json`, 'utf8'));
const perImage = info.image_shape.reduce((a, b) => a * b, 1);
const labels = new Int32Array(fs.readFileSync(`${dir}/labels.i32`).buffer.slice(0));
if (labels.length !== info.images) throw new Error(`${dir}: ${labels.length} labels for ${info.images} images`);
const fd = fs.openSync(`${dir}/inputs.f32`, 'r');
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
});
let top1 = 0, top5 = 0;
for (let begin = 0; begin < info.images; begin += batch) {
  const n = Math.min(batch, info.images - begin);
  const bytes = Buffer.alloc(n * perImage * 4);
  fs.readSync(fd, bytes, 0, bytes.length, begin * perImage * 4);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, n * perImage);
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, [n, ...info.image_shape]) });
  const logits = out[session.outputNames[0]];
  const classes = logits.dims[1];
  for (let i = 0; i < n; ++i) {
    const row = logits.data.subarray(i * classes, (i + 1) * classes);
    const label = labels[begin + i];
    let rank = 0;  // classes scoring higher than the true one, ties broken by index (as lowbit does)
    for (let c = 0; c < classes; ++c) if (row[c] > row[label] || (row[c] === row[label] && c < label)) ++rank;
    if (rank < 1) ++top1;
    if (rank < 5) ++top5;
  }
}
console.log(`top-1 ${(100 * top1 / info.images).toFixed(2)} %`);
console.log(`top-5 ${(100 * top5 / info.images).toFixed(2)} %`);
