/**
 * The runtime in Node: `deno task build` bundles it into a package; a ten-line script run by a
 * real `node` process imports it by package name, loads an artifact from its folder on two
 * threads and runs it (and another classifies sentences with a checkpoint's artifact of four buckets, 1 and 2 rows by 16 and 32 tokens). Its outputs must equal the Deno runtime's on the same artifact, inputs and
 * kernels (Node 20's V8 has no relaxed SIMD, so it runs the plain-SIMD module: exactly Deno's with
 * `noRelaxedSimd`, within 1e-5 of Deno's relaxed-SIMD FMA kernels).
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CAN_RUN, runTask } from "./compile_cli.ts";
import {
  bertConfig,
  compile,
  loadCompiled,
  seededInputs,
  writeArtifact,
  writeSyntheticBert,
} from "../mod.ts";

const MINI = fileURLToPath(new URL("../../shared/models/sst2-bert-mini", import.meta.url));

/** Whether a `node` of at least version 20 is on the PATH. */
async function nodeVersion(): Promise<number | undefined> {
  const r = await new Deno.Command("node", { args: ["--version"], stdout: "piped" }).output().catch(() =>
    undefined
  );
  return r?.success ? Number(/^v(\d+)/.exec(new TextDecoder().decode(r.stdout))?.[1]) : undefined;
}

Deno.test({
  name: "a node script imports the bundled runtime package and runs an artifact like Deno does",
  ignore: !CAN_RUN || ((await nodeVersion()) ?? 0) < 20,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-node-" });
    try {
      const pkg = join(dir, "node_modules", "@sparrow", "runtime");
      const built = await runTask("build", "--out", pkg);
      assert.equal(built.code, 0, built.stderr);

      const model = join(dir, "tiny.sir");
      await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16, layers: 2 }), model);
      const result = await compile(model, {
        pipeline: "prune{sparsity=0.8 block=4x4},canonicalize,cse,fuse,bsr-lower{block=4x4},dce",
        log: () => {},
      });
      const artifact = join(dir, "artifact");
      await writeArtifact(result, artifact);
      const f = result.module.func("main")!;
      const inputs = Object.fromEntries(f.params.map((p, i) => [p.name, [...seededInputs(f, 3)[i].data]]));

      const script = [
        `import { loadCompiled } from "@sparrow/runtime";`,
        `const [dir, inputs] = [process.argv[2], JSON.parse(process.argv[3])];`,
        `const model = await loadCompiled(dir, { threads: 2 });`,
        `const out = Object.fromEntries(Object.entries(model.run(inputs)).map(([k, v]) => [k, [...v]]));`,
        `console.log(JSON.stringify({ relaxedSimd: model.relaxedSimd, out }));`,
        `model.close();`,
      ].join("\n");
      await Deno.writeTextFile(join(dir, "classify.mjs"), script + "\n");
      const node = await new Deno.Command("node", {
        args: ["classify.mjs", artifact, JSON.stringify(inputs)],
        cwd: dir,
        stdin: "null",
      }).output();
      const stderr = new TextDecoder().decode(node.stderr);
      assert.equal(node.code, 0, stderr);
      const { relaxedSimd, out: fromNode } = JSON.parse(new TextDecoder().decode(node.stdout)) as {
        relaxedSimd: boolean;
        out: Record<string, number[]>;
      };
      for (const noRelaxedSimd of [false, true]) {
        const deno = await loadCompiled(artifact, { threads: 2, noRelaxedSimd });
        try {
          const fromDeno = deno.run(inputs);
          assert.deepEqual(Object.keys(fromNode), Object.keys(fromDeno));
          for (const [name, values] of Object.entries(fromDeno)) {
            if (deno.relaxedSimd === relaxedSimd) assert.deepEqual(fromNode[name], [...values], name);
            else assert.ok(values.every((v, i) => Math.abs(v - fromNode[name][i]) <= 1e-5), name);
          }
        } finally {
          deno.close();
        }
      }

      // Text in: an artifact compiled from a checkpoint classifies sentences in Node as in Deno.
      if (existsSync(join(MINI, "tokenizer.json"))) {
        const mini = join(dir, "mini");
        await writeArtifact(await compile(MINI, { seq: [16, 32], batch: [1, 2] }), mini);
        const sentences = [
          "a gripping , funny film",
          "a dull , lifeless mess",
          "a charming and often affecting journey",
        ];
        await Deno.writeTextFile(
          join(dir, "sentences.mjs"),
          [
            `import { loadCompiled } from "@sparrow/runtime";`,
            `const model = await loadCompiled(process.argv[2], { threads: 2 });`,
            `const results = model.classify(JSON.parse(process.argv[3]));`,
            `console.log(JSON.stringify({ relaxedSimd: model.relaxedSimd, results }));`,
            `model.close();`,
          ].join("\n") + "\n",
        );
        const ran = await new Deno.Command("node", {
          args: ["sentences.mjs", mini, JSON.stringify(sentences)],
          cwd: dir,
          stdin: "null",
        }).output();
        assert.equal(ran.code, 0, new TextDecoder().decode(ran.stderr));
        const fromNode = JSON.parse(new TextDecoder().decode(ran.stdout));
        const deno = await loadCompiled(mini, { threads: 2, noRelaxedSimd: !fromNode.relaxedSimd });
        try {
          assert.deepEqual(fromNode.results, deno.classify(sentences));
          assert.deepEqual(fromNode.results.map((r: { label: string }) => r.label), [
            "positive",
            "negative",
            "positive",
          ]);
        } finally {
          deno.close();
        }
      }

      // A corrupt artifact is a one-line error in Node too.
      await Deno.writeFile(join(artifact, "weights.bin"), new Uint8Array(8));
      const bad = await new Deno.Command("node", {
        args: ["classify.mjs", artifact, JSON.stringify(inputs)],
        cwd: dir,
        stdin: "null",
      }).output();
      assert.notEqual(bad.code, 0);
      assert.match(
        new TextDecoder().decode(bad.stderr),
        /weights\.bin: the weights file has 8 bytes, the plan expects/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
