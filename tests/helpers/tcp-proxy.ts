import type { Socket, TCPSocketListener } from "bun";

type Client = { upstream: Socket<Client | null> | null; queued: Uint8Array[] };

/**
 * A TCP forwarder to a local port that a test can cut and restore, to take a store away from an app mid-test
 * without touching the machine's shared servers.
 */
export class TcpProxy {
  private listener: TCPSocketListener<Client> | null = null;
  private readonly sockets = new Set<Socket<Client> | Socket<Client | null>>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  start(): this {
    const sockets = this.sockets;
    const targetPort = this.targetPort;
    this.listener = Bun.listen<Client>({
      hostname: "127.0.0.1",
      port: this.port,
      socket: {
        open(client) {
          client.data = { upstream: null, queued: [] };
          sockets.add(client);
          void Bun.connect<Client | null>({
            hostname: "127.0.0.1",
            port: targetPort,
            data: null,
            socket: {
              open(upstream) {
                sockets.add(upstream);
                client.data.upstream = upstream;
                for (const chunk of client.data.queued) upstream.write(chunk);
                client.data.queued = [];
              },
              data(_upstream, chunk) {
                client.write(chunk);
              },
              close(upstream) {
                sockets.delete(upstream);
                client.end();
              },
              error() {
                client.end();
              },
            },
          }).catch(() => client.end());
        },
        data(client, chunk) {
          if (client.data.upstream) client.data.upstream.write(chunk);
          else client.data.queued.push(new Uint8Array(chunk));
        },
        close(client) {
          sockets.delete(client);
          client.data.upstream?.end();
        },
      },
    });
    this.port = this.listener.port;
    return this;
  }

  /** Stops listening and cuts every connection, like a server that went away. */
  cut(): void {
    this.listener?.stop(true);
    this.listener = null;
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
  }
}
