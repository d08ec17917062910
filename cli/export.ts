/**
 * `deno task export <model.sir> -o <model.onnx> [--func NAME] [--pretranspose]`: writes a
 * model (dense or pruned) as ONNX, opset 17, that onnxruntime runs.
 *
 * The model is parsed and verified against its weights file first; its problems are reported
 * as `file:line:col: error: ...` with exit code 1, as is an op ONNX cannot express. Usage
 * mistakes exit with 2. The file is written to a temp file beside it and renamed into place,
 * so a failure never leaves a partial model. What the export changed on the way (e.g. a BSR
 * weight written densified) is printed as `note: ...` lines.
 */

import { exportOnnx, loadModule, loadWeights, OnnxExportError, writeFileAtomic } from "../mod.ts";
import { main, parseCli, reportDiagnostics, UsageError } from "./common.ts";

const USAGE = `usage: deno task export <model.sir> -o <model.onnx> [options]

Writes function @main of the model, with its weights, as an ONNX model (opset 17, IR version 8).

options:
  -o, --output FILE   the ONNX file to write (required)
  --func NAME         the function to export (default main)
  --pretranspose      store [out, in] weights of dense {transpose_b} and bsr_dense transposed,
                      as <weight>.T, instead of a Transpose node after the weight
  -h, --help          show this help`;

/** `1.2 MB`. */
function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

main(async () => {
  const { values, positionals } = parseCli(Deno.args, {
    output: { type: "string", short: "o" },
    func: { type: "string", default: "main" },
    pretranspose: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return void console.log(USAGE);
  if (positionals.length === 0) throw new UsageError(`missing the model to export (a .sir file)\n${USAGE}`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  if (!values.output) throw new UsageError("missing -o/--output FILE, the ONNX file to write");
  const [path] = positionals;
  const output = values.output;
  if (output.endsWith(".sir") || output.endsWith(".safetensors")) {
    throw new UsageError(`the output ${output} must be an ONNX file (e.g. model.onnx), not IR or weights`);
  }

  const loaded = await loadModule(path);
  if (!loaded.module) {
    reportDiagnostics(loaded.diagnostics, loaded.text);
    return 1;
  }
  const m = loaded.module;
  if (!m.func(values.func)) {
    throw new UsageError(
      `the model has no function '@${values.func}' (it has ${m.funcs.map((f) => "@" + f.name).join(", ")})`,
    );
  }
  const weights = await loadWeights(m, path);
  let result;
  try {
    result = exportOnnx(m, weights, { func: values.func, pretransposeWeights: values.pretranspose });
  } catch (e) {
    if (!(e instanceof OnnxExportError)) throw e;
    if (e.loc) reportDiagnostics([{ loc: e.loc, message: e.reason }], loaded.text);
    else console.error(e.message);
    return 1;
  }
  for (const note of result.notes) console.log(`note: ${note}`);
  await writeFileAtomic(output, result.bytes);
  console.log(
    `wrote ${output} (${formatBytes(result.bytes.length)}, ONNX opset 17) from ${path} @${values.func}`,
  );
});
