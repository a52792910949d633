import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { PanelClient } from "./helpers/panel-client.ts";
import { cleanEnv, start } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop } from "./helpers/shop.ts";

// Eight 50 MB uploads through a real process on a shared 2-core machine: hang protection only, never a speed target.
setDefaultTimeout(180_000);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const MB = 1024 * 1024;
const UPLOADS = 8;
/** Just under the limit, with room for the multipart envelope: what an owner uploading a full-size build sends. */
const BUILD_BYTES = 50 * MB - 4096;
/**
 * A loose bound on the app's peak memory (VmHWM) while eight such uploads run at once. Buffered, they took it to
 * 804 MB; streamed to disk they cost a few chunks each. The figure measured on this machine is printed below.
 */
const PEAK_BOUND_MB = 320;

/** Resident memory of a process, from /proc: now (VmRSS) and its peak so far (VmHWM), in MB. */
async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rss: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

/**
 * A multipart body of one zip-looking file of `size` bytes, made as it is sent (the test process holds a chunk,
 * not 400 MB), and its SHA-256 once sent.
 */
function streamedZip(size: number, csrf: string, boundary: string) {
  const encoder = new TextEncoder();
  const head = encoder.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${csrf}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="build"; filename="loader.zip"\r\n` +
      "Content-Type: application/zip\r\n\r\n",
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const chunk = new Uint8Array(256 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff;
  const hash = new Bun.CryptoHasher("sha256");
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(head);
    },
    pull(controller) {
      if (sent >= size) {
        controller.enqueue(tail);
        controller.close();
        return;
      }
      const part = chunk.slice(0, Math.min(chunk.length, size - sent));
      if (sent === 0) part.set([0x50, 0x4b, 0x03, 0x04]);
      hash.update(part);
      sent += part.length;
      controller.enqueue(part);
    },
  });
  return { body, length: head.length + size + tail.length, sha256: () => hash.digest("hex") };
}

test("eight concurrent 50 MB build uploads to a real process keep its memory bounded, and every file arrives whole", async () => {
  const t = await createTestShop();
  cleanups.push(t.close);
  const { password } = await t.shop.accounts.reset("admin");
  const products = await Promise.all(
    Array.from({ length: UPLOADS }, (_, i) => t.shop.products.create({ name: `Upload ${i + 1}` })),
  );
  const port = freePort();
  const app = start(
    ["bun", "src/main.ts"],
    cleanEnv({
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      REDIS_PREFIX: t.redisPrefix,
      HOST: "127.0.0.1",
      PORT: String(port),
      SESSION_SECRET: "s".repeat(40),
      DATA_DIR: t.config.dataDir,
      LOG_LEVEL: "error",
      // As the systemd unit runs it (setup.sh): the garbage collector sized for 512 MB.
      BUN_JSC_forceRAMSize: String(512 * MB),
    }),
  );
  cleanups.push(async () => {
    app.proc.kill("SIGKILL");
    await app.proc.exited;
  });
  await app.waitFor(/"msg":"http listening"|listening/i, 30_000).catch(() => {});
  const base = `http://127.0.0.1:${port}/Morpheus%20Private`;
  for (
    let i = 0;
    i < 100 &&
    !(await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    ));
    i++
  )
    await Bun.sleep(100);

  const owner = new PanelClient({
    config: t.config,
    request: (path, init) => fetch(`${base}${path}`, { ...init, redirect: "manual" }),
  });
  expect((await owner.login("admin", password)).status).toBe(303);
  await owner.page(`/products/${products[0]!.id}`);
  expect(owner.csrf).not.toBe("");
  const idle = await memory(app.proc.pid);

  let sampling = true;
  let highest = idle.rss;
  const sampler = (async () => {
    while (sampling) {
      highest = Math.max(highest, (await memory(app.proc.pid)).rss);
      await Bun.sleep(25);
    }
  })();
  const boundary = "----morpheus-upload";
  const started = performance.now();
  const uploads = await Promise.all(
    products.map(async (product) => {
      const zip = streamedZip(BUILD_BYTES, owner.csrf, boundary);
      const res = await fetch(`${base}/products/${product.id}/build`, {
        method: "POST",
        body: zip.body,
        redirect: "manual",
        headers: {
          "content-type": `multipart/form-data; boundary=${boundary}`,
          "content-length": String(zip.length),
          cookie: [...owner.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
        },
      });
      return { product, status: res.status, sha256: zip.sha256() };
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  sampling = false;
  await sampler;
  const after = await memory(app.proc.pid);

  console.log(
    `8 × 50 MB uploads in ${seconds.toFixed(1)} s: app RSS idle ${idle.rss} MB (peak so far ${idle.peak} MB), ` +
      `highest sampled ${highest} MB, VmHWM ${after.peak} MB`,
  );
  for (const upload of uploads) {
    expect(upload.status).toBe(303);
    const build = (await t.shop.products.byId(upload.product.id))!.build!;
    expect({ size: build.size, sha256: build.sha256 }).toEqual({ size: BUILD_BYTES, sha256: upload.sha256 });
    expect(Bun.file(build.path).size).toBe(BUILD_BYTES);
  }
  expect(after.peak).toBeLessThan(PEAK_BOUND_MB);
});
