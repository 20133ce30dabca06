/** A parsed `HOST:PORT`. */
export interface Address {
  hostname: string;
  port: number;
}

/**
 * Parses `HOST:PORT` (IPv6 as `[::1]:7700`).
 *
 * @throws {Error} naming the string and the expected form.
 */
export function parseAddress(text: string, what: string): Address {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new Error(
      `Cannot parse ${what} "${text}": expected HOST:PORT, e.g. 127.0.0.1:7700`,
    );
  }
  return { hostname: m[1] ?? m[2], port };
}
