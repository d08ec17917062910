/**
 * The runtime in a real browser: `deno task build --target browser` bundles it, `deno task serve`
 * serves the demo page, the bundle and sst2-bert-mini's artifact (S=32), and headless Chromium
 * (Debian's, driven by playwright-core) types a sentence, clicks, and reads the label and
 * probabilities (tests/browser_driver.ts, in its own process), which must match Deno's `classify`
 * on the same artifact and kernels within 1e-5.
 * Once cross-origin isolated on two threads, once not (the page says it runs on one thread and
 * still classifies); an altered weights file is refused in the page as in Deno. Ignored without
 * /usr/bin/chromium or the checkpoint. `SPARROW_SCREENSHOTS=DIR` keeps the page's screenshots.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CAN_RUN, ROOT, runTask, taskCommand } from "./compile_cli.ts";
import { CHROMIUM, type PageRun } from "./browser_driver.ts";
import { compile, loadCompiled, writeArtifact } from "../mod.ts";

const MINI = fileURLToPath(new URL("../../shared/models/sst2-bert-mini", import.meta.url));
const SENTENCE = "a gripping, funny and moving film";

/** A running `deno task serve` and its address. */
interface Server {
  url: string;
  stop(): Promise<void>;
}

/** Starts `deno task serve artifact --port 0 --bundle bundle ...extra` and waits for its address. */
async function serve(artifact: string, bundle: string, ...extra: string[]): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskCommand("serve"), artifact, "--port", "0", "--bundle", bundle, ...extra],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let address;
  while (!(address = /^serving .* on (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(text))) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`deno task serve ended: ${text}`);
    text += value;
  }
  const url = address[1];
  return {
    url,
    async stop() {
      child.kill();
      await reader.cancel();
      await child.status;
    },
  };
}

/** Runs tests/browser_driver.ts on `url`: what the page showed, with a screenshot at `screenshot`. */
async function openPage(url: string, screenshot: string): Promise<PageRun> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      // playwright-core reads /proc (which Deno grants only with --allow-all) and starts Chromium.
      "--allow-all",
      join(ROOT, "tests", "browser_driver.ts"),
      url,
      SENTENCE,
      screenshot,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const png = await Deno.readFile(screenshot);
  assert.ok(png.length > 1000);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

Deno.test({
  name: "the demo page classifies in headless Chromium like Deno, isolated on two threads and not on one",
  ignore: !CAN_RUN || !existsSync(CHROMIUM) || !existsSync(join(MINI, "tokenizer.json")),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-browser-" });
    const shots = Deno.env.get("SPARROW_SCREENSHOTS") ?? dir;
    try {
      const bundle = join(dir, "web");
      const built = await runTask("build", "--target", "browser", "--out", bundle);
      assert.equal(built.code, 0, built.stderr);
      const artifact = join(dir, "mini");
      await writeArtifact(await compile(MINI, { seq: 32, log: () => {} }), artifact);

      /** Classifies SENTENCE in the page and checks it against Deno's run; returns the status line. */
      const classifyIn = async (url: string, threads: number, shot: string) => {
        const run = await openPage(url, join(shots, shot));
        assert.match(run.status, /^Ready: /, run.status);
        assert.equal(run.threads, String(threads));
        assert.match(run.latency!, /^\(\d+\.\d ms\)$/);
        assert.deepEqual(run.errors, []);
        const deno = await loadCompiled(artifact, { threads: 1, noRelaxedSimd: !run.relaxedSimd });
        try {
          const [expected] = deno.classify([SENTENCE]);
          assert.equal(run.label, expected.label);
          assert.equal(run.probabilities!.length, expected.probabilities.length);
          expected.probabilities.forEach((p, i) =>
            assert.ok(Math.abs(p - run.probabilities![i]) <= 1e-5, `${i}`)
          );
          assert.deepEqual(
            run.rows,
            expected.probabilities.map((p, i) => `${deno.labels![i]}${p.toFixed(4)}`),
          );
        } finally {
          deno.close();
        }
        return run.status;
      };

      const isolated = await serve(artifact, bundle);
      try {
        const status = await classifyIn(`${isolated.url}?threads=2`, 2, "isolated.png");
        assert.match(status, /2 threads, .*cross-origin isolated\.$/);
      } finally {
        await isolated.stop();
      }
      const open = await serve(artifact, bundle, "--no-isolation");
      try {
        const status = await classifyIn(open.url, 1, "not-isolated.png");
        assert.match(status, /runs on one thread: the page is not cross-origin isolated\.$/);

        // Two threads on a page that is not isolated are refused, in one line.
        const refused = await openPage(`${open.url}?threads=2`, join(dir, "refused.png"));
        assert.equal(
          refused.status,
          "Error: 2 threads need a cross-origin isolated page (COOP and COEP headers)",
        );

        // An altered weights file (same size) is refused in the page, naming it.
        const weights = join(artifact, "weights.bin");
        const bytes = await Deno.readFile(weights);
        bytes[bytes.length >> 1] ^= 1;
        await Deno.writeFile(weights, bytes);
        const altered = await openPage(open.url, join(dir, "altered.png"));
        assert.equal(
          altered.status,
          `Error: ${open.url}artifact/weights.bin: checksum mismatch (the file was altered)`,
        );
      } finally {
        await open.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
