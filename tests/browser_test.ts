/**
 * The runtime in a real browser: `deno task build --target browser` bundles it, `deno task serve`
 * serves the demo page, the bundle and sst2-bert-mini's artifact (S=32), and headless Chromium
 * (Debian's, driven by playwright-core) types a sentence, clicks, and reads the label and
 * probabilities, which must match Deno's `classify` on the same artifact and kernels within 1e-5.
 * Once cross-origin isolated on two threads, once not (the page says it runs on one thread and
 * still classifies); an altered weights file is refused in the page as in Deno. Ignored without
 * /usr/bin/chromium or the checkpoint. `SPARROW_SCREENSHOTS=DIR` keeps the page's screenshots.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CAN_RUN, ROOT, runTask, taskCommand } from "./compile_cli.ts";
import { compile, loadCompiled, writeArtifact } from "../mod.ts";

const CHROMIUM = "/usr/bin/chromium";
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

Deno.test({
  name: "the demo page classifies in headless Chromium like Deno, isolated on two threads and not on one",
  ignore: !CAN_RUN || !existsSync(CHROMIUM) || !existsSync(join(MINI, "tokenizer.json")),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { chromium } = await import("npm:playwright-core@1.65.2");
    const dir = await Deno.makeTempDir({ prefix: "sparrow-browser-" });
    const shots = Deno.env.get("SPARROW_SCREENSHOTS") ?? dir;
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
      ],
    });
    try {
      const bundle = join(dir, "web");
      const built = await runTask("build", "--target", "browser", "--out", bundle);
      assert.equal(built.code, 0, built.stderr);
      const artifact = join(dir, "mini");
      await writeArtifact(await compile(MINI, { seq: 32, log: () => {} }), artifact);

      /** Opens the page, classifies SENTENCE, checks it against Deno's run; returns the status line. */
      const classifyIn = async (server: Server, query: string, threads: number, shot: string) => {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e: Error) => errors.push(e.message));
        try {
          await page.goto(server.url + query);
          await page.waitForSelector("#run:not([disabled]), #status.error", { timeout: 60_000 });
          const status = (await page.textContent("#status"))!;
          assert.match(status, /^Ready: /, status);
          assert.equal(await page.getAttribute("#status", "data-threads"), String(threads));
          const relaxedSimd = (await page.getAttribute("#status", "data-relaxed-simd")) === "true";
          await page.fill("#text", SENTENCE);
          await page.click("#run");
          await page.waitForSelector("#result:not([hidden]), #status.error", { timeout: 60_000 });
          const label = await page.textContent("#label");
          const probabilities = JSON.parse((await page.getAttribute("#result", "data-probabilities"))!);
          assert.match((await page.textContent("#latency"))!, /^\(\d+\.\d ms\)$/);

          const deno = await loadCompiled(artifact, { threads: 1, noRelaxedSimd: !relaxedSimd });
          try {
            const [expected] = deno.classify([SENTENCE]);
            assert.equal(label, expected.label);
            assert.equal(probabilities.length, expected.probabilities.length);
            expected.probabilities.forEach((p, i) =>
              assert.ok(Math.abs(p - probabilities[i]) <= 1e-5, `${i}`)
            );
            const rows = await page.$$eval("#probabilities tr", (trs) => trs.map((tr) => tr.textContent));
            assert.deepEqual(rows, expected.probabilities.map((p, i) => `${deno.labels![i]}${p.toFixed(4)}`));
          } finally {
            deno.close();
          }
          const png = await page.screenshot({ path: join(shots, shot) });
          assert.ok(png.length > 1000);
          assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
          assert.deepEqual(errors, []);
          return status;
        } finally {
          await page.close();
        }
      };

      const isolated = await serve(artifact, bundle);
      try {
        const status = await classifyIn(isolated, "?threads=2", 2, "isolated.png");
        assert.match(status, /2 threads, .*cross-origin isolated\.$/);
      } finally {
        await isolated.stop();
      }
      const open = await serve(artifact, bundle, "--no-isolation");
      try {
        const status = await classifyIn(open, "", 1, "not-isolated.png");
        assert.match(status, /runs on one thread: the page is not cross-origin isolated\.$/);

        // Two threads on a page that is not isolated are refused, in one line.
        const page = await browser.newPage();
        await page.goto(open.url + "?threads=2");
        await page.waitForSelector("#status.error", { timeout: 60_000 });
        assert.equal(
          await page.textContent("#status"),
          "Error: 2 threads need a cross-origin isolated page (COOP and COEP headers)",
        );
        await page.close();

        // An altered weights file (same size) is refused in the page, naming it.
        const weights = join(artifact, "weights.bin");
        const bytes = await Deno.readFile(weights);
        bytes[bytes.length >> 1] ^= 1;
        await Deno.writeFile(weights, bytes);
        const altered = await browser.newPage();
        await altered.goto(open.url);
        await altered.waitForSelector("#status.error", { timeout: 60_000 });
        assert.equal(
          await altered.textContent("#status"),
          `Error: ${open.url}artifact/weights.bin: checksum mismatch (the file was altered)`,
        );
        await altered.close();
      } finally {
        await open.stop();
      }
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
