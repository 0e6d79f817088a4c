import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { UserError } from '../errors';

/**
 * A folder of PNG/JPEG images (inference input, custom datasets). The class of an image, when
 * known, comes from its sub-folder name (`<dir>/<class>/<file>`) or from a `<n>_<class>.<ext>` file
 * name (the RealMix rename convention). Files are taken in sorted order of their paths relative to
 * the folder, which is the order of the predictions written out. Hidden files and folders
 * (`.DS_Store`, macOS's `._x.png` companions, `.ipynb_checkpoints`) are not part of the set.
 */
export interface FolderImage {
  file: string; // relative to the folder
  className: string | null;
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** `flag` names the option the folder came from, for messages. */
export function listImages(dir: string, flag = '--dir'): FolderImage[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`${flag} ${dir} is not a folder of images`);
  const out: FolderImage[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (IMAGE_EXT.test(e.name)) out.push({ file: r, className: classOf(r) });
    }
  };
  walk('');
  out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  if (out.length === 0) throw new UserError(`no .png or .jpg images in ${dir}`);
  return out;
}

/** Folders under `dir` (relative paths, sorted) that hold no sub-folder and no image: an empty class. */
export function emptyLeafFolders(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).filter((e) => !e.name.startsWith('.'));
    const subdirs = entries.filter((e) => e.isDirectory());
    if (rel && subdirs.length === 0 && !entries.some((e) => !e.isDirectory() && IMAGE_EXT.test(e.name))) out.push(rel);
    for (const e of subdirs) walk(rel ? `${rel}/${e.name}` : e.name);
  };
  walk('');
  return out.sort();
}

export function classOf(rel: string): string | null {
  const parts = rel.split('/');
  if (parts.length > 1) return parts[parts.length - 2];
  const m = /^\d+_(.+)\.[^.]+$/.exec(parts[0]);
  return m ? m[1] : null;
}

/**
 * Decodes one image to exactly height x width x channels uint8: resized (sharp's default
 * Lanczos filter, stretched to fill) when its size differs, converted to grey or RGB as the model expects.
 */
export async function loadImageAs(file: string, height: number, width: number, channels: number): Promise<Uint8Array> {
  try {
    let img = sharp(file).removeAlpha();
    const meta = await sharp(file).metadata();
    if (meta.width !== width || meta.height !== height) img = img.resize(width, height, { fit: 'fill' });
    img = channels === 1 ? img.toColourspace('b-w') : img.toColourspace('srgb');
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels === channels) return new Uint8Array(data.buffer, data.byteOffset, data.length);
    // grey source for an RGB model: replicate the channel
    const out = new Uint8Array(height * width * channels);
    for (let i = 0; i < height * width; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = data[i * info.channels + Math.min(c, info.channels - 1)];
    return out;
  } catch (e) {
    throw new UserError(`cannot read image ${file}: ${imageErrorReason(e)}`);
  }
}

/**
 * The telling line of a sharp/libvips error. "Warning treated as error…" says only that libvips
 * warned, and the warning's own text does not always come with it (under concurrent decodes).
 */
export function imageErrorReason(e: unknown): string {
  const lines = String((e as Error)?.message ?? e)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const telling = lines.find((l) => !/failOn/.test(l));
  if (telling) return telling;
  return lines.length > 0 ? 'the image data is damaged or cut off' : 'not a readable image';
}
