import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { addressBucket } from "../src/http/client-ip.ts";
import { buildHttpApp } from "../src/server.ts";
import { ensureProduct } from "./helpers/licence.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database and starting servers can take seconds on a loaded machine.
setDefaultTimeout(30_000);

/**
 * One IPv6 subscriber gets a whole /64 from the provider: a limit per full address would give them 2^64 fresh
 * budgets. The auth API and the panel login count IPv6 clients per /64.
 */

describe("the address a limit counts by", () => {
  test("IPv6 addresses count by their /64, however they are written", () => {
    const bucket = "2001:db8:1:2::/64";
    for (const address of [
      "2001:db8:1:2::1",
      "2001:DB8:1:2:ffff:ffff:ffff:ffff",
      "2001:0db8:0001:0002:0000:0000:0000:0abc",
      "2001:db8:1:2::",
      "2001:db8:1:2::7%eth0",
      "2001:db8:1:2:1:2:10.0.0.1",
    ]) {
      expect(addressBucket(address)).toBe(bucket);
    }
    expect(addressBucket("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressBucket("::1")).toBe("0:0:0:0::/64");
  });

  test("IPv4 addresses, also IPv4-mapped, count one by one; what is not an address stays as it is", () => {
    expect(addressBucket("203.0.113.7")).toBe("203.0.113.7");
    expect(addressBucket("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(addressBucket("::FFFF:cb00:7107")).toBe("203.0.113.7");
    for (const junk of ["unknown", "1:2:3", "1::2::3", "1:2:3:4:5:6:7:8:9", "2001:db8::g", "::1.2.3.999"]) {
      expect(addressBucket(junk)).toBe(junk);
    }
  });
});

describe("limits on a served port, behind the local proxy", () => {
  let t: TestShop;
  let base: string;
  beforeAll(async () => {
    t = await createTestShop({ authLimitPerIp: 3, trustedProxies: ["127.0.0.1", "::1"] });
    await ensureProduct(t, "Six");
    const app = buildHttpApp(t.shop, t.config);
    app.listen({ hostname: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${app.server!.port}${encodeURI(t.config.basePath)}`;
    const stop = t.close;
    t.close = async () => {
      await app.stop(true);
      await stop();
    };
  });
  afterAll(async () => {
    await t.close();
  });

  test("auth API: addresses of one /64 share one budget; the next /64 has its own", async () => {
    const call = async (from: string, i: number) =>
      (await fetch(`${base}/api/Six/auth?key=UNKNOWN-${i}&uuid=PC`, { headers: { "x-forwarded-for": from } })).status;
    for (let i = 1; i <= 3; i++) expect(await call(`2001:db8:aa:1::${i}`, i)).toBe(403);
    expect(await call("2001:db8:aa:1:ffff::99", 4)).toBe(429);
    expect(await call("2001:db8:aa:2::1", 5)).toBe(403);
  });

  test("panel login: five wrong passwords from one /64 block every address of it", async () => {
    const from = (ip: string) =>
      new PanelClient(
        {
          config: t.config,
          request: (path, init) => fetch(`${base}${path}`, { ...init, redirect: "manual" }),
        },
        { "x-forwarded-for": ip },
      );
    const { password } = await t.shop.accounts.reset("owner6");
    for (let i = 1; i <= 5; i++) {
      expect((await from(`2001:db8:bb:1::${i}`).login(`nobody-${i}`, "wrong")).status).toBe(401);
    }
    const sixth = await from("2001:db8:bb:1:abcd::1").login("owner6", password);
    expect(sixth.status).toBe(429);
    expect(await sixth.text()).toContain("Слишком много неудачных попыток входа с этого адреса.");
    expect((await from("2001:db8:bb:2::1").login("owner6", password)).status).toBe(303);
  });
});
