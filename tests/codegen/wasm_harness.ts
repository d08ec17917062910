/**
 * Test harness for kernels: assembles wasm kernels into a module over a fresh shared memory, lays
 * out arrays in it, and runs a kernel once per thread id, in turn, so that each thread's share of
 * the work is checked without real threads.
 */

import { assembleWat } from "../../codegen/wasm/assemble.ts";
import type { WasmKernel } from "../../codegen/wasm/kernel.ts";
import { kernelModuleWat } from "../../codegen/wasm/module.ts";

/** A kernel: byte addresses, then the thread id and the thread count. */
type Kernel = (...args: number[]) => void;

/** A memory with kernels loaded, and a bump allocator for test arrays. */
export class KernelHarness {
  private next = 64;
  private constructor(
    readonly memory: WebAssembly.Memory,
    readonly exports: Readonly<Record<string, Kernel>>,
  ) {}

  /** Assembles `kernels` with `helpers` over a memory of `bytes` bytes (default 64 MiB). */
  static async create(
    kernels: readonly WasmKernel[],
    helpers: Readonly<Record<string, string>> = {},
    bytes = 64 << 20,
  ): Promise<KernelHarness> {
    const pages = Math.ceil(bytes / 65536);
    const wasm = await assembleWat("test.wat", kernelModuleWat(kernels, helpers, pages));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const instance = await WebAssembly.instantiate(await WebAssembly.compile(wasm as BufferSource), {
      env: { memory },
    });
    return new KernelHarness(memory, instance.exports as Record<string, Kernel>);
  }

  /** Frees every array put or allocated so far (their memory is reused). */
  reset(): void {
    this.next = 64;
  }

  /** Copies `data` into fresh 64-byte-aligned memory and returns its byte address. */
  put(data: Float32Array | Int32Array): number {
    const addr = this.alloc(data.length);
    new (data.constructor as Float32ArrayConstructor)(this.memory.buffer, addr, data.length).set(
      data as Float32Array,
    );
    return addr;
  }

  /** Copies `data` flush against the end of the memory, where reading past it traps; its address. */
  putAtEnd(data: Float32Array): number {
    const addr = this.memory.buffer.byteLength - 4 * data.length;
    new Float32Array(this.memory.buffer, addr, data.length).set(data);
    return addr;
  }

  /** Reserves `count` 4-byte slots, filled with f32 NaN so unwritten outputs show, and returns the address. */
  alloc(count: number): number {
    const addr = this.next;
    this.next = Math.ceil((addr + count * 4 + 64) / 64) * 64;
    if (this.next > this.memory.buffer.byteLength) throw new Error("harness memory exhausted");
    new Float32Array(this.memory.buffer, addr, count).fill(NaN);
    return addr;
  }

  /** A copy of `count` f32 values at `addr`. */
  read(addr: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, addr, count).slice();
  }

  /** A copy of `count` i32 words at `addr`. */
  readI32(addr: number, count: number): Int32Array {
    return new Int32Array(this.memory.buffer, addr, count).slice();
  }

  /** Runs kernel `name` on `args` once for each thread id of `threads`, one after another. */
  run(name: string, args: readonly number[], threads = 1): void {
    const f = this.exports[name];
    if (!f) throw new Error(`no kernel '${name}'`);
    for (let tid = 0; tid < threads; tid++) f(...args, tid, threads);
  }
}
