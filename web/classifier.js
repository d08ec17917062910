// The demo's model, in a module worker: the runtime's calling thread waits for its worker threads
// at each step, which a page's main thread may not. Messages in: { load: { url, threads } }, then
// { text }; out: { ready }, { result, ms } or { error }.

import { crossOriginIsolated, loadCompiled } from "/runtime/sparrow-runtime.js";

let model;

self.onmessage = async ({ data }) => {
  try {
    if (data.load) {
      const { url, threads } = data.load;
      model = await loadCompiled(url, threads === undefined ? {} : { threads });
      const { threads: n, relaxedSimd, labels } = model;
      self.postMessage({ ready: { threads: n, relaxedSimd, labels, isolated: crossOriginIsolated } });
    } else {
      const t0 = performance.now();
      const [result] = model.classify([data.text]);
      self.postMessage({ result, ms: performance.now() - t0 });
    }
  } catch (err) {
    self.postMessage({ error: err.message });
  }
};
