// The Node host of `deno task bench buckets`: `node node_bench.mjs CONFIG.json`, run from a folder
// holding node_modules/@sparrow/runtime (the bundled runtime) and timing.mjs (web/timing.js). Prints the results as JSON.

import { readFileSync } from "node:fs";
import { loadCompiled } from "@sparrow/runtime";
import { timeSparrow } from "./timing.mjs";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const sentences = JSON.parse(readFileSync(config.sentences, "utf8"));
const models = [];
for (const { name, dir } of config.artifacts) {
  models.push({ name, model: await loadCompiled(dir, { threads: config.threads }) });
}
const results = timeSparrow(models, sentences, config.batches, config.repeat);
for (const { model } of models) model.close();
console.log(JSON.stringify(results));
