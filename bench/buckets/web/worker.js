// The bench page's worker: times Sparrow's artifacts (served at /artifacts/NAME/) with the bundled
// browser runtime, and onnxruntime-web on the same model exported to ONNX (/onnx/b<batch>.onnx),
// at one thread count per page load (onnxruntime-web fixes its threads at its first session).

import { loadCompiled } from "/runtime/sparrow-runtime.js";
import * as ort from "/ort/ort.wasm.min.mjs";
import { timeOrt, timeSparrow } from "/bench/timing.js";

const json = async (url) => (await fetch(url)).json();

self.onmessage = async ({ data: config }) => {
  try {
    const { threads, batches, repeat } = config;
    const sentences = await json("/data/sentences.json");
    const results = [];
    const models = [];
    for (const name of config.artifacts) {
      models.push({ name, model: await loadCompiled(`/artifacts/${name}/`, { threads }) });
    }
    results.push(...timeSparrow(models, sentences, batches, repeat));
    for (const { model } of models) model.close();
    if (config.ort) {
      ort.env.wasm.numThreads = threads;
      ort.env.wasm.wasmPaths = "/ort/";
      const feeds = await json("/data/feeds.json");
      const sessions = [];
      for (const batch of batches) {
        const session = await ort.InferenceSession.create(`/onnx/b${batch}.onnx`, {
          executionProviders: ["wasm"],
          graphOptimizationLevel: "all",
        });
        sessions.push({ batch, session });
      }
      results.push(...await timeOrt(ort, sessions, feeds, config.seq, repeat));
      for (const { session } of sessions) await session.release();
    }
    self.postMessage({ results, isolated: self.crossOriginIsolated });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
