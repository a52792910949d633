import type { Server } from "bun";

/** The socket peer's address, without the IPv4-mapped IPv6 prefix ("::ffff:1.2.3.4" → "1.2.3.4"). */
export function peerAddress(request: Request, server: Server<unknown> | null | undefined): string | null {
  const address = server?.requestIP(request)?.address ?? null;
  return address?.startsWith("::ffff:") ? address.slice(7) : address;
}

/**
 * The client's address. X-Forwarded-For is believed only when the direct peer is one of our own proxies (the local
 * Caddy); anyone else could write any address there. With several proxies, the right-most untrusted entry is the
 * client.
 */
export function clientIp(
  request: Request,
  server: Server<unknown> | null | undefined,
  trustedProxies: readonly string[],
): string | null {
  const peer = peerAddress(request, server);
  if (peer === null || !trustedProxies.includes(peer)) return peer;
  const forwarded = request.headers.get("x-forwarded-for");
  if (!forwarded) return peer;
  const hops = forwarded
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.startsWith("::ffff:") ? hops[i]!.slice(7) : hops[i]!;
    if (!trustedProxies.includes(hop)) return hop.slice(0, 64);
  }
  return peer;
}

/**
 * The part of a client address that rate limits count by. One IPv6 subscriber usually gets a whole /64 (2^64
 * addresses) from the provider, so counting per full IPv6 address would hand one client endless fresh budgets:
 * IPv6 clients share one bucket per /64. IPv4 addresses (and IPv4-mapped IPv6 ones) count one by one; anything
 * that does not parse as an address is its own bucket.
 */
export function addressBucket(address: string): string {
  if (!address.includes(":")) return address;
  const groups = ipv6Groups(address);
  if (groups === null) return address;
  // ::ffff:a.b.c.d is an IPv4 client reached over an IPv6 socket.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join(".");
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (a zone and an embedded IPv4 allowed), or null if it is not one. */
function ipv6Groups(address: string): number[] | null {
  let text = address.toLowerCase();
  const zone = text.indexOf("%");
  if (zone !== -1) text = text.slice(0, zone);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  const last = text.slice(lastColon + 1);
  if (last.includes(".")) {
    const octets = last.split(".");
    if (octets.length !== 4 || !octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)) return null;
    const [a, b, c, d] = octets.map(Number) as [number, number, number, number];
    tail = [(a << 8) | b, (c << 8) | d];
    // Keep a "::" before the IPv4 part; drop a single separating colon ("1:2:3:4:5:6:1.2.3.4").
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith("::")) text = text.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (![...head, ...rest].every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  const want = 8 - tail.length;
  const given = head.length + rest.length;
  // Without "::" every group is written; with it, "::" stands for at least one zero group.
  if (halves.length === 1 ? given !== want : given >= want) return null;
  const zeros = Array<string>(want - given).fill("0");
  return [...head, ...zeros, ...rest].map((g) => Number.parseInt(g, 16)).concat(tail);
}
