/**
 * A worker of `deno task bench table2`: loads the model, tokenizer and dev rows once (the first
 * message, the setting), then runs each job it is sent and posts back its result or its error.
 */

import { type Job, load, type Loaded, runJob, type Setting } from "./job.ts";

// deno-lint-ignore no-explicit-any
const scope = globalThis as any;
let setting: Setting | undefined;
let loaded: Promise<Loaded> | undefined;
scope.onmessage = async (e: MessageEvent<{ setting?: Setting; job?: Job }>) => {
  try {
    if (e.data.setting) {
      setting = e.data.setting;
      loaded = load(setting);
      return;
    }
    const result = await runJob(setting!, await loaded!, e.data.job!);
    scope.postMessage({ result });
  } catch (err) {
    scope.postMessage({ error: err instanceof Error ? err.stack ?? err.message : String(err) });
  }
};
