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
