import assert from "node:assert/strict";
import { acceptNext } from "./accept.ts";

/** A listener whose accept() fails as scripted, then hands out `conn`. */
function scripted(
  failures: Error[],
  conn: Deno.Conn,
): Deno.Listener & { calls: number } {
  const l = {
    calls: 0,
    accept(): Promise<Deno.Conn> {
      l.calls++;
      const e = failures.shift();
      return e ? Promise.reject(e) : Promise.resolve(conn);
    },
  };
  return l as unknown as Deno.Listener & { calls: number };
}

Deno.test("acceptNext passes over connections reset before accept, reporting each, and returns the next good one", async () => {
  const conn = {} as Deno.Conn;
  const reset = new Deno.errors.NotConnected(
    "Transport endpoint is not connected (os error 107)",
  );
  const aborted = new Deno.errors.ConnectionAborted(
    "Software caused connection abort",
  );
  const listener = scripted([reset, aborted], conn);
  const seen: string[] = [];
  assert.equal(await acceptNext(listener, (e) => seen.push(e.message)), conn);
  assert.equal(listener.calls, 3);
  assert.deepEqual(seen, [reset.message, aborted.message]);
});

Deno.test("acceptNext rejects once the listener is closed", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pending = acceptNext(listener);
  listener.close();
  await assert.rejects(pending, Deno.errors.BadResource);
  const closed = scripted([
    new Deno.errors.BadResource("Listener has been closed"),
  ], {} as Deno.Conn);
  await assert.rejects(acceptNext(closed), /Listener has been closed/);
});
