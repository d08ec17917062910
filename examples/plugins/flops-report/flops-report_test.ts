/**
 * Runs the flops-report plugin through the CLI, exactly as `deno task compile` does, on a
 * synthetic bert-tiny, and checks its table against FLOPs computed here from the config.
 *
 * Spawning the CLI needs `--allow-run`; without it these tests are ignored.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bertConfig, bertParamCount, writeSyntheticBert } from "../../../frontend/synthetic_bert.ts";
import { CAN_RUN, compile } from "../../../tests/compile_cli.ts";

const PLUGIN = "examples/plugins/flops-report/flops-report.ts";
const config = bertConfig("bert-tiny", { seq: 16 });

/** A temp folder with `bert-tiny.sir` (seq 16) and its weights. */
async function withModel(fn: (model: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-flops-" });
  try {
    const model = join(dir, "bert-tiny.sir");
    await writeSyntheticBert(config, model);
    await fn(model, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

interface Row {
  ops: number;
  flops: string;
  share: string;
  params: number;
}

/** The table rows the pass logged, by group. */
function rows(stderr: string): Map<string, Row> {
  const out = new Map<string, Row>();
  for (const line of stderr.split("\n")) {
    const m = /^flops-report: (embeddings|layer \d+|head|model|total)\s+(\d+)\s+([\d.]+)\s+([\d.]+%)\s+(\d+)$/
      .exec(line);
    if (m) out.set(m[1], { ops: Number(m[2]), flops: m[3], share: m[4], params: Number(m[5]) });
  }
  return out;
}

/** One encoder layer's FLOPs, worked out from the config rather than from the IR. */
function layerFlops(): number {
  const { seq: S, hidden: H, intermediate: I, heads: A } = config;
  const d = H / A;
  const matmuls = 4 * (2 * S * H * H) + // q, k, v, attention output
    2 * (2 * S * H * I) + // intermediate and output dense
    2 * (2 * A * S * S * d); // scores and context
  const elementwise = 3 * 2 * S * H + // reshape + transpose of q, k, v
    2 * A * S * S + // scale, softmax
    2 * S * H + // context transpose + reshape
    2 * S * H + // residual add + LayerNorm (attention)
    S * I + // gelu
    2 * S * H; // residual add + LayerNorm (output)
  return matmuls + elementwise;
}

/** One encoder layer's parameters, from the config. */
function layerParams(): number {
  const { hidden: H, intermediate: I } = config;
  return 4 * (H * H + H) + (I * H + I) + (H * I + H) + 2 * (2 * H);
}

Deno.test({
  name: "flops-report: per-layer FLOPs and params through the CLI (unit=flop)",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model) => {
      const r = await compile(model, "--plugin", PLUGIN, "--passes", "flops-report{unit=flop}");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, await Deno.readTextFile(model), "an analysis pass changes nothing");
      const table = rows(r.stderr);
      assert.deepEqual([...table.keys()], ["embeddings", "layer 0", "layer 1", "head", "total"], r.stderr);
      assert.equal(layerFlops(), 6_456_320); // bert-tiny at seq 16, worked out by hand
      for (const layer of ["layer 0", "layer 1"]) {
        assert.equal(table.get(layer)!.flops, String(layerFlops()), layer);
        assert.equal(table.get(layer)!.params, layerParams(), layer);
        assert.equal(table.get(layer)!.ops, 23, layer);
      }
      const groups = [...table].filter(([g]) => g !== "total").map(([, row]) => row);
      const total = table.get("total")!;
      assert.equal(Number(total.flops), groups.reduce((n, row) => n + Number(row.flops), 0));
      assert.equal(total.params, bertParamCount(config), "every weight is used once");
      assert.equal(total.ops, groups.reduce((n, row) => n + row.ops, 0));
      assert.equal(total.share, "100.0%");
      assert.doesNotMatch(r.stderr, /^\s+at /m);
    }),
});

Deno.test({
  name: "flops-report: default unit is MFLOP, with three decimals",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model) => {
      const r = await compile(model, "--plugin", PLUGIN, "--passes", "flops-report", "--timing");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^flops-report: group\s+ops\s+MFLOP\s+share\s+params$/m);
      assert.equal(rows(r.stderr).get("layer 0")!.flops, (layerFlops() / 1e6).toFixed(3));
      const ops = rows(r.stderr).get("total")!.ops;
      assert.match(
        r.stderr,
        new RegExp(`^1\\s+flops-report\\s+[\\d.]+\\s+${ops}\\s+unchanged$`, "m"),
        "timing row",
      );
    }),
});

Deno.test({
  name: "flops-report: fusing activations into dense ops leaves the FLOPs alone",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model) => {
      const passes = "flops-report{unit=flop},fuse{add-layer-norm=false},flops-report{unit=flop}";
      const r = await compile(model, "--plugin", PLUGIN, "--passes", passes);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stderr.split("\n");
      const half = lines.findLastIndex((l) => l.startsWith("flops-report: @"));
      const [before, after] = [rows(lines.slice(0, half).join("\n")), rows(lines.slice(half).join("\n"))];
      assert.equal(after.get("layer 0")!.ops, before.get("layer 0")!.ops - 1, "gelu fused into its dense");
      for (const group of before.keys()) {
        assert.equal(after.get(group)!.flops, before.get(group)!.flops, group);
        assert.equal(after.get(group)!.params, before.get(group)!.params, group);
      }
    }),
});

Deno.test({
  name: "flops-report: a bad unit is a usage error listing the values",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model) => {
      const r = await compile(model, "--plugin", PLUGIN, "--passes", "flops-report{unit=tflop}");
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /--passes:14: option 'unit' of 'flops-report' must be one of flop, kflop, mflop, gflop/,
      );
      assert.equal(r.stdout, "");
    }),
});

Deno.test({
  name: "flops-report: listed by --list-passes with its option",
  ignore: !CAN_RUN,
  async fn() {
    const r = await compile("--plugin", PLUGIN, "--list-passes");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}flops-report: Prints FLOPs/m);
    assert.match(
      r.stdout,
      /^ {4}unit=flop\|kflop\|mflop\|gflop \(default mflop\): unit of the FLOPs column$/m,
    );
  },
});
