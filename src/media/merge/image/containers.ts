/** The container formats whose segments the splice follows, and their parsers. */
import type { RandomAccess } from '../../info/random-access.ts';
import { jpegLayout } from './jpeg.ts';
import type { Container, ImageLayout } from './layout.ts';
import { pngLayout } from './png.ts';
import { webpLayout } from './webp.ts';

export function isContainer(format: string): format is Container {
  return format === 'jpg' || format === 'png' || format === 'webp';
}

export function layoutOf(format: Container, access: RandomAccess): Promise<ImageLayout> {
  switch (format) {
    case 'jpg':
      return jpegLayout(access);
    case 'png':
      return pngLayout(access);
    case 'webp':
      return webpLayout(access);
  }
}
