/** Writes `text` to `file`, creating the file's folder first. */
export async function writeText(file: string, text: string): Promise<void> {
  const i = file.lastIndexOf("/");
  if (i > 0) await Deno.mkdir(file.slice(0, i), { recursive: true });
  await Deno.writeTextFile(file, text);
}
