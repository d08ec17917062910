/**
 * A subprocess running onnxruntime-web (wasm) at a given thread count, for bench/peers.ts:
 * `deno run --allow-read --allow-env bench/ort_web_server.ts MODEL.onnx THREADS`. It reads the
 * feeds (one JSON line), answers "ready", then runs the model once for each "run" line and
 * answers the first output's values as a JSON line.
 */

import * as ort from "onnxruntime-web";

const [modelPath, threadsArg] = Deno.args;
ort.env.wasm.numThreads = Number(threadsArg);
const session = await ort.InferenceSession.create(await Deno.readFile(modelPath), {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "all",
});
const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
const encoder = new TextEncoder();
let buffer = "";
let feeds: Record<string, ort.Tensor> | undefined;
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  buffer += value;
  let i;
  while ((i = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    if (!feeds) {
      const given = JSON.parse(line) as Record<string, number[]>;
      feeds = Object.fromEntries(
        Object.entries(given).map((
          [k, v],
        ) => [k, new ort.Tensor("int64", BigInt64Array.from(v.map(BigInt)), [1, v.length])]),
      );
      await Deno.stdout.write(encoder.encode("ready\n"));
      continue;
    }
    const out = await session.run(feeds);
    const data = out[session.outputNames[0]].data as Float32Array;
    await Deno.stdout.write(encoder.encode(JSON.stringify([...data]) + "\n"));
  }
}
