// The sha256 of a model file, recorded in each output's meta.json.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';

const digests = new Map<string, Promise<string>>();

/** The sha256 of a file, hex; computed once per path and size/mtime in this process. */
export async function sha256File(file: string): Promise<string> {
  const stat = await fs.stat(file);
  const key = `${file}\0${stat.size}\0${stat.mtimeMs}`;
  let digest = digests.get(key);
  if (!digest) {
    digest = new Promise<string>((resolve, reject) => {
      const hash = createHash('sha256');
      createReadStream(file).on('data', (d) => hash.update(d)).on('error', reject).on('end', () => resolve(hash.digest('hex')));
    });
    digests.set(key, digest);
    digest.catch(() => digests.delete(key));
  }
  return digest;
}
