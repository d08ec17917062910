/**
 * The runtime in a real browser: `deno task build --target browser` bundles it, `deno task serve`
 * serves the demo page, the bundle and sst2-bert-mini's artifact (S=32), and headless Chromium
 * (Debian's, driven by playwright-core) types a sentence, clicks, and reads the label and
 * probabilities (tests/browser_driver.ts, in its own process), which must match Deno's `classify`
 * on the same artifact and kernels within 1e-5.
 * Once cross-origin isolated on two threads, once not (the page says it runs on one thread and
 * still classifies); an altered weights file is refused in the page as in Deno. Ignored without
 * /usr/bin/chromium or the checkpoint. `SPARROW_SCREENSHOTS=DIR` keeps the page's screenshots.
 * Without a browser: what `serve` answers (only files inside its folders, typed, with or without
 * the isolation headers).
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CAN_RUN, ROOT, runTask, taskCommand } from "./compile_cli.ts";
import { CHROMIUM, type PageRun } from "./browser_driver.ts";
import { handle } from "../cli/serve.ts";
import {
  bertConfig,
  compile,
  loadCompiled,
  seededInputs,
  writeArtifact,
  writeSyntheticBert,
} from "../mod.ts";

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
      for (const file of ["sparrow-runtime.js", "worker.js"]) {
        assert.doesNotMatch(
          await Deno.readTextFile(join(bundle, file)),
          /\bfrom\s*["']node:|require\(/,
          file,
        );
      }
      const artifact = join(dir, "mini");
      await writeArtifact(await compile(MINI, { seq: [16, 32], batch: [1, 2], log: () => {} }), artifact);

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

Deno.test("serve answers only with files inside its folders, typed, isolated unless told not to", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-serve-" });
  try {
    const [artifact, bundle] = [join(dir, "artifact"), join(dir, "bundle")];
    await Deno.mkdir(artifact);
    await Deno.mkdir(bundle);
    await Deno.writeFile(join(artifact, "kernels.simd.wasm"), new Uint8Array([0, 97, 115, 109]));
    await Deno.writeTextFile(join(bundle, "worker.js"), "export {};\n");
    await Deno.writeTextFile(join(dir, "secret.txt"), "secret\n");
    await Deno.symlink(join(dir, "secret.txt"), join(artifact, "link.txt"));
    const get = (path: string, isolation = true, method = "GET") =>
      handle(new Request(`http://127.0.0.1:8000${path}`, { method }), { artifact, bundle, isolation });

    const page = await get("/");
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(page.headers.get("cross-origin-opener-policy"), "same-origin");
    assert.equal(page.headers.get("cross-origin-embedder-policy"), "require-corp");
    assert.match(await page.text(), /<textarea id="text"/);
    const wasm = await get("/artifact/kernels.simd.wasm");
    assert.equal(wasm.headers.get("content-type"), "application/wasm");
    assert.deepEqual([...new Uint8Array(await wasm.arrayBuffer())], [0, 97, 115, 109]);
    const worker = await get("/runtime/worker.js", false);
    assert.equal(worker.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(worker.headers.get("cross-origin-opener-policy"), null);
    await worker.body?.cancel();
    for (
      const path of [
        "/artifact/..%2Fsecret.txt",
        "/artifact/%2e%2e/secret.txt",
        "/artifact/link.txt",
        "/artifact/",
        "/runtime/nope.js",
        "/artifact/..%5Csecret.txt",
      ]
    ) {
      const r = await get(path);
      assert.equal(r.status, 404, path);
      assert.equal(await r.text(), "not found\n");
    }
    const post = await get("/", true, "POST");
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one thread runs on a plain memory (what a page that is not isolated has), as several do on a shared one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-plain-" });
  try {
    const model = join(dir, "tiny.sir");
    await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16, layers: 1 }), model);
    const result = await compile(model, { log: () => {} });
    const f = result.module.func("main")!;
    const inputs = Object.fromEntries(f.params.map((p, i) => [p.name, [...seededInputs(f, 5)[i].data]]));
    const outputs = [];
    for (const threads of [1, 2]) {
      const m = await loadCompiled(result.artifact!, { threads });
      try {
        assert.equal(m.memory.buffer instanceof SharedArrayBuffer, threads > 1);
        outputs.push(m.run(inputs));
      } finally {
        m.close();
      }
    }
    assert.deepEqual(outputs[0], outputs[1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
