/**
 * Sparrow as a library in someone else's project: a folder outside the repository, with no
 * config of its own, holds a ten-line script that imports mod.ts, compiles a real checkpoint with
 * a pruning pipeline and runs one input; its logits must equal what the CLI's artifact gives.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CAN_RUN, ROOT, runTask } from "./compile_cli.ts";
import { readSafetensors } from "../mod.ts";

const MODEL = join(ROOT, "../shared/models/sst2-bert-mini");
const PIPELINE = "prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4},canonicalize,cse,fuse,dce";
const SEQ = 16;
/** "[CLS] a gripping, funny film [SEP]" as the checkpoint's tokenizer writes it, padded to SEQ. */
const IDS = [101, 1037, 13940, 1010, 6057, 2143, 102];
const INPUTS = {
  input_ids: [...IDS, ...Array(SEQ - IDS.length).fill(0)],
  token_type_ids: Array(SEQ).fill(0),
  attention_mask: [...IDS.map(() => 1), ...Array(SEQ - IDS.length).fill(0)],
};

Deno.test({
  name: "a script outside the repository imports mod.ts, compiles and runs like the CLI",
  ignore: !CAN_RUN || !existsSync(join(MODEL, "config.json")),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-embed-" });
    try {
      const script = [
        `import { compile, loadCompiled } from "${pathToFileURL(join(ROOT, "mod.ts")).href}";`,
        `const inputs = JSON.parse(Deno.args[0]);`,
        `const result = await compile(${JSON.stringify(MODEL)}, {`,
        `  seq: ${SEQ},`,
        `  pipeline: ${JSON.stringify(PIPELINE)},`,
        `  log: () => {},`,
        `});`,
        `const model = await loadCompiled(result.artifact!, { threads: 1 });`,
        `console.log(JSON.stringify([...model.run(inputs).logits]));`,
        `model.close();`,
      ].join("\n");
      await Deno.writeTextFile(join(dir, "classify.ts"), script + "\n");
      const run = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "classify.ts", JSON.stringify(INPUTS)],
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdin: "null",
      }).output();
      const stderr = new TextDecoder().decode(run.stderr);
      assert.equal(run.code, 0, stderr);
      const fromScript = JSON.parse(new TextDecoder().decode(run.stdout)) as number[];

      const artifact = join(dir, "artifact");
      const compiled = await runTask(
        "compile",
        MODEL,
        "--seq",
        String(SEQ),
        "--passes",
        PIPELINE,
        "-o",
        artifact,
      );
      assert.equal(compiled.code, 0, compiled.stderr);
      await Deno.writeTextFile(join(dir, "inputs.json"), JSON.stringify(INPUTS));
      const saved = join(dir, "logits.safetensors");
      const ran = await runTask(
        "run",
        artifact,
        "--inputs",
        join(dir, "inputs.json"),
        "--threads",
        "1",
        "--repeat",
        "1",
        "--save",
        saved,
      );
      assert.equal(ran.code, 0, ran.stderr);
      const fromCli = [...(await readSafetensors(saved)).float32("logits")];
      assert.equal(fromScript.length, 2);
      assert.deepEqual(fromScript, fromCli);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
