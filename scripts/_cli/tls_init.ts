import { generateCredentials } from "../../engine/transport/secure/generate.ts";

/** Options of `hakobu tls init`. */
export interface TlsInitOptions {
  dir: string;
  receiverNames: string[];
  sourceIdentity: string;
  days: number;
}

/** Writes a credentials directory and says which files go where. */
export async function tlsInitCommand(opts: TlsInitOptions): Promise<void> {
  const made = await generateCredentials(opts.dir, opts);
  for (const f of made.files) console.log(`wrote ${f}`);
  console.log(
    [
      "",
      `receiver (${
        opts.receiverNames.join(", ")
      }): ca-cert.pem, server-cert.pem, server-key.pem, keys.psk`,
      `source "${opts.sourceIdentity}": ca-cert.pem and client-cert.pem + client-key.pem (or keys.psk with --tls-identity ${opts.sourceIdentity})`,
      "ca-key.pem signs more certificates: keep it off both hosts",
      "",
      `  hakobu receive --listen ${
        opts.receiverNames[0]
      }:7700 --tls-dir ${opts.dir}`,
      `  hakobu migrate --from sim:memcached --to ${
        opts.receiverNames[0]
      }:7700 --tls-dir ${opts.dir}`,
    ].join("\n"),
  );
}
