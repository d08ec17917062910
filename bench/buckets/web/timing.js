// The timing loops of `deno task bench buckets`, shared by its three hosts (Deno, Node, the bench
// page in Chromium), so each measures the same thing. Plain JavaScript: every host loads it as is.

/** The median of a list of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Times `classify` of every sentence by each compiled model at each batch size: one warm-up pass
 * over the first 32 sentences, then `repeat` rounds, each making one full pass per configuration
 * in turn (interleaved, so drift in the machine's speed hits all alike). Returns per configuration
 * the ms of each pass and the predicted label indices of the last.
 */
export function timeSparrow(models, sentences, batches, repeat) {
  const configs = models.flatMap(({ name, model }) =>
    batches.map((batch) => ({ name, model, batch, ms: [] }))
  );
  for (const c of configs) c.model.classify(sentences.slice(0, 32), { batch: c.batch });
  for (let r = 0; r < repeat; r++) {
    for (const c of configs) {
      const t0 = performance.now();
      const out = c.model.classify(sentences, { batch: c.batch });
      c.ms.push(performance.now() - t0);
      c.predictions = out.map((o) => o.index);
    }
  }
  return configs.map(({ name, batch, ms, predictions }) => ({ name, batch, ms, predictions }));
}

/**
 * Times an onnxruntime session per batch size over every row of `feeds` (token ids and masks
 * already fitted to the session's length, `seq` per row), `repeat` passes each after one warm-up
 * run, a short last batch padded with copies of its last row. Returns per batch the ms of each
 * pass and the predicted label indices of the last.
 */
export async function timeOrt(ort, sessions, feeds, seq, repeat) {
  const rows = feeds.ids.length / seq;
  const results = [];
  const configs = sessions.map(({ batch, session }) => ({ batch, session, ms: [] }));
  const tensors = (batch, from) => {
    const ids = new BigInt64Array(batch * seq), mask = new BigInt64Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      const row = Math.min(from + b, rows - 1);
      for (let i = 0; i < seq; i++) {
        ids[b * seq + i] = BigInt(feeds.ids[row * seq + i]);
        mask[b * seq + i] = BigInt(feeds.mask[row * seq + i]);
      }
    }
    return {
      input_ids: new ort.Tensor("int64", ids, [batch, seq]),
      token_type_ids: new ort.Tensor("int64", new BigInt64Array(batch * seq), [batch, seq]),
      attention_mask: new ort.Tensor("int64", mask, [batch, seq]),
    };
  };
  // Inputs are built before the clock starts: the peer is timed on its runs alone.
  for (const c of configs) {
    c.inputs = [];
    for (let from = 0; from < rows; from += c.batch) c.inputs.push(tensors(c.batch, from));
    await c.session.run(c.inputs[0]);
  }
  for (let r = 0; r < repeat; r++) {
    for (const c of configs) {
      const predictions = [];
      const t0 = performance.now();
      for (const feed of c.inputs) {
        const out = await c.session.run(feed);
        const logits = out[c.session.outputNames[0]].data;
        const labels = logits.length / c.batch;
        for (let b = 0; b < c.batch && predictions.length < rows; b++) {
          let best = 0;
          for (let k = 1; k < labels; k++) if (logits[b * labels + k] > logits[b * labels + best]) best = k;
          predictions.push(best);
        }
      }
      c.ms.push(performance.now() - t0);
      c.predictions = predictions;
    }
  }
  for (const c of configs) {
    results.push({ name: "onnxruntime-web", batch: c.batch, ms: c.ms, predictions: c.predictions });
  }
  return results;
}
