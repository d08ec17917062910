/** `deno task advise`: one-line errors on bad input. */

import { assertOneLineError, CAN_RUN, runTask } from "../compile_cli.ts";

const DEV = "tests/advise/missing-dev.tsv";

Deno.test({
  name: "advise CLI: a missing model, a bad or missing budget, a missing --data are one-line errors",
  ignore: !CAN_RUN,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "advise-cli-" });
    try {
      const dev = `${dir}/dev.tsv`;
      await Deno.writeTextFile(dev, "sentence\tlabel\na fine film\t1\n");
      assertOneLineError(
        await runTask("advise", `${dir}/no-such-model`, "--data", dev, "--budget", "1.0"),
        1,
        /no-such-model: no such file or folder/,
      );
      for (const bad of ["-1", "abc", "", "101"]) {
        assertOneLineError(
          await runTask("advise", dir, "--data", dev, `--budget=${bad}`),
          2,
          /--budget must be a number of accuracy points in \[0, 100\]/,
        );
      }
      assertOneLineError(await runTask("advise", dir, "--data", dev), 2, /--budget is required/);
      assertOneLineError(await runTask("advise", dir, "--budget", "1"), 2, /--data is required/);
      assertOneLineError(
        await runTask("advise", dir, "--data", DEV, "--budget", "1"),
        1,
        /missing-dev\.tsv: no such file or folder/,
      );
      assertOneLineError(
        await runTask("advise", dir, "--data", dev, "--budget", "1", "--blocks", "4x"),
        2,
        /--blocks: '4x' is not a block shape/,
      );
      assertOneLineError(
        await runTask("advise", dir, "--data", dev, "--budget", "1", "--sparsities", "0.5,1"),
        2,
        /--sparsities: '1' is not in \(0, 1\)/,
      );
      for (const bad of ["0", "8,x", "-2"]) {
        assertOneLineError(
          await runTask("advise", dir, "--data", dev, "--budget", "1", `--patterns=${bad}`),
          2,
          /--patterns: '.*' is not a pattern count/,
        );
      }
      for (const bad of ["1x1@0.8/p", "1x1@0.8/p0", "1x1/p8"]) {
        assertOneLineError(
          await runTask("advise", dir, "--data", dev, "--budget", "1", `--uniform=${bad}`),
          2,
          /--uniform: '.*' is not RxC@S such as 4x4@0\.8, or RxC@S\/pK/,
        );
      }
      assertOneLineError(await runTask("advise", "--data", dev, "--budget", "1"), 2, /expected one model/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
