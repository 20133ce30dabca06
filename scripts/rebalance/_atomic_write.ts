/**
 * Writing a file so that readers see the old content or the new, never a
 * part: write a temporary file beside it, flush it, rename it over the
 * target (rename is atomic within one file system).
 *
 * @module
 */

/** Writes `text` to `path` atomically, creating the file's folder first. */
export async function writeFileAtomic(
  path: string,
  text: string,
): Promise<void> {
  const slash = path.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const file = await Deno.open(tmp, {
      write: true,
      createNew: true,
      mode: 0o644,
    });
    try {
      const bytes = new TextEncoder().encode(text);
      for (let off = 0; off < bytes.length;) {
        off += await file.write(bytes.subarray(off));
      }
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
