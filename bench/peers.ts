/**
 * The contenders a benchmark times side by side, behind one interface: Sparrow's compiled
 * artifact, onnxruntime-node (native) and onnxruntime-web (wasm). onnxruntime-web's thread
 * count is process-wide, so each onnxruntime-web contender runs in its own subprocess
 * (`bench/ort_web_server.ts`), driven over stdin/stdout.
 */

import { fileURLToPath } from "node:url";
import {
  bertConfig,
  type BertPresetName,
  buildBertModule,
  syntheticBertWeights,
} from "../frontend/synthetic_bert.ts";
import { seededInputs } from "../ir/inputs.ts";
import { loadCompiled, memoryStore, type Module, Tensor, tensorType, type WeightStore } from "../mod.ts";

/** Named inputs: int64 token ids, type ids and mask, as BigInt64Array. */
export type Feeds = Record<string, BigInt64Array>;

/** One contender: runs the model once and returns the first output's values. */
export interface Contender {
  name: string;
  threads: number;
  run(): Promise<Float32Array>;
  close(): Promise<void> | void;
}

/** Sparrow's artifact in `dir`, at `threads` threads. */
export async function sparrow(name: string, dir: string, threads: number, feeds: Feeds): Promise<Contender> {
  const model = await loadCompiled(dir, { threads });
  const out = model.plan.buckets[0].outputs[0].name;
  return {
    name,
    threads,
    run: () => Promise.resolve(model.run(feeds)[out]),
    close: () => model.close(),
  };
}

/** onnxruntime-node on an ONNX model, at `threads` intra-op threads. */
export async function ortNode(onnx: Uint8Array, threads: number, feeds: Feeds): Promise<Contender> {
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(onnx, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  });
  const tensors = Object.fromEntries(
    Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor("int64", v, [1, v.length])]),
  );
  return {
    name: "onnxruntime-node",
    threads,
    run: async () => (await session.run(tensors))[session.outputNames[0]].data as Float32Array,
    close: () => session.release(),
  };
}

/** onnxruntime-web (wasm) on the ONNX model in `onnxPath`, in a subprocess with `threads` threads. */
export async function ortWeb(onnxPath: string, threads: number, feeds: Feeds): Promise<Contender> {
  const server = fileURLToPath(new URL("./ort_web_server.ts", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", server, onnxPath, String(threads)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  const readLine = async (): Promise<string> => {
    while (!pending.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("onnxruntime-web subprocess exited");
      pending += value;
    }
    const i = pending.indexOf("\n");
    const line = pending.slice(0, i);
    pending = pending.slice(i + 1);
    return line;
  };
  const encoder = new TextEncoder();
  await writer.write(
    encoder.encode(
      JSON.stringify(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, [...v].map(Number)]))) +
        "\n",
    ),
  );
  await readLine(); // "ready"
  return {
    name: "onnxruntime-web",
    threads,
    run: async () => {
      await writer.write(encoder.encode("run\n"));
      return Float32Array.from(JSON.parse(await readLine()));
    },
    close: async () => {
      await writer.close();
      await child.status;
    },
  };
}

/** A seeded synthetic BERT preset at length `seq`: its module, weights, interpreter inputs and feeds. */
export function syntheticWorkload(preset: BertPresetName, seq: number): {
  m: Module;
  weights: WeightStore;
  inputs: Tensor[];
  feeds: Feeds;
} {
  const c = bertConfig(preset, { seq });
  const m = buildBertModule(c, "w.safetensors");
  const weights = memoryStore(
    new Map(
      syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
    ),
  );
  const inputs = seededInputs(m.funcs[0], 0);
  const feeds: Feeds = Object.fromEntries(
    m.funcs[0].params.map((p, i) => [p.name, BigInt64Array.from(inputs[i].data, (v) => BigInt(v))]),
  );
  return { m, weights, inputs, feeds };
}
