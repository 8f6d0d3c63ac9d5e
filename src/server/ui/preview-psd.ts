/**
 * The composite image of a PSD or PSB (what Photoshop saves with "maximize
 * compatibility"), decoded without reading the layers: the header, colour
 * mode data, image resources and image data sections are read through
 * RandomAccess and given to ag-psd as a document whose layer and mask
 * section is empty. The layers, almost all of a layered file, are skipped.
 */
import { initializeCanvas, readPsd } from 'ag-psd';
import type { RandomAccess } from '../../media/info/random-access.ts';

export interface Composite {
  readonly width: number;
  readonly height: number;
  /** RGBA, 8 bits a channel. */
  readonly data: Uint8Array;
}

let canvasReady = false;
/** ag-psd makes image data through a canvas factory; Node has no canvas, so plain pixel arrays. */
export function readyCanvas(): void {
  if (canvasReady) return;
  initializeCanvas(
    () => {
      throw new Error('no canvas on the server: PSD composites are read as raw pixels');
    },
    (width, height) =>
      ({
        width,
        height,
        data: new Uint8ClampedArray(width * height * 4),
        colorSpace: 'srgb',
      }) as unknown as ReturnType<NonNullable<Parameters<typeof initializeCanvas>[1]>>,
  );
  canvasReady = true;
}

/** The composite, or undefined when the file has none; throws on a document over `maxPixels`. */
export async function psdComposite(
  access: RandomAccess,
  maxPixels: number,
): Promise<Composite | undefined> {
  const header = await access.read(0, 26);
  if (header.toString('latin1', 0, 4) !== '8BPS') throw new Error("no '8BPS' signature");
  const psb = header.readUInt16BE(4) === 2;
  const height = header.readUInt32BE(14);
  const width = header.readUInt32BE(18);
  if (width * height > maxPixels)
    throw new Error(`${width} × ${height} is above the preview limit`);
  let offset = 26;
  const colorMode = 4 + (await access.read(offset, 4)).readUInt32BE(0);
  offset += colorMode;
  const resources = 4 + (await access.read(offset, 4)).readUInt32BE(0);
  offset += resources;
  const lengthSize = psb ? 8 : 4;
  const lengthBytes = await access.read(offset, lengthSize);
  const layers = psb ? Number(lengthBytes.readBigUInt64BE(0)) : lengthBytes.readUInt32BE(0);
  const imageData = offset + lengthSize + layers;
  if (imageData + 2 > access.size) return undefined;
  const document = Buffer.concat([
    await access.read(0, 26 + colorMode + resources),
    Buffer.alloc(lengthSize),
    await access.read(imageData, access.size - imageData),
  ]);
  readyCanvas();
  const psd = readPsd(document, {
    skipLayerImageData: true,
    skipThumbnail: true,
    useImageData: true,
  });
  const image = psd.imageData;
  if (!image || image.width === 0) return undefined;
  return { width: image.width, height: image.height, data: image.data as Uint8Array };
}
