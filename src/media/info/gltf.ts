/**
 * glTF 2.0: GLB reads the 12-byte header and the JSON chunk only (the BIN
 * chunk, where meshes and textures live, is never read); a `.gltf` is its
 * JSON. Counts the document's top-level arrays and names its generator.
 */
import type { MediaReader } from './random-access.ts';
import type { MediaProperties, SceneInfo } from './types.ts';

/** The largest JSON read (a glTF's JSON is its index, normally kilobytes). */
const MAX_JSON = 64 * 1024 * 1024;

export async function readGlb(r: MediaReader): Promise<MediaProperties> {
  const header = await r.bytes(0, 20);
  if (header.toString('latin1', 0, 4) !== 'glTF') throw r.fail("no 'glTF' magic");
  const version = header.readUInt32LE(4);
  if (version !== 2) throw r.fail(`GLB version ${version} (only 2 is read)`);
  const jsonLength = header.readUInt32LE(12);
  if (header.toString('latin1', 16, 20) !== 'JSON') throw r.fail('the first chunk is not JSON');
  if (jsonLength > MAX_JSON) throw r.fail(`a JSON chunk of ${jsonLength} bytes`);
  return { scene: sceneOf(r, await r.bytes(20, jsonLength)) };
}

export async function readGltfJson(r: MediaReader): Promise<MediaProperties> {
  if (r.size > MAX_JSON) throw r.fail(`a glTF JSON of ${r.size} bytes`);
  return { scene: sceneOf(r, await r.bytes(0, r.size)) };
}

function sceneOf(r: MediaReader, json: Buffer): SceneInfo {
  let doc: unknown;
  try {
    doc = JSON.parse(json.toString('utf8').replace(/[\s\0]+$/, ''));
  } catch (error) {
    throw r.fail(`the JSON does not parse (${(error as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw r.fail('the JSON is not an object');
  const root = doc as Record<string, unknown>;
  const count = (key: string): number => {
    const value = root[key];
    return Array.isArray(value) ? value.length : 0;
  };
  const asset = (root['asset'] ?? {}) as Record<string, unknown>;
  const scene: { -readonly [K in keyof SceneInfo]: SceneInfo[K] } = {
    nodes: count('nodes'),
    meshes: count('meshes'),
    materials: count('materials'),
    animations: count('animations'),
    scenes: count('scenes'),
    textures: count('textures'),
  };
  if (typeof asset['generator'] === 'string') scene.generator = asset['generator'];
  if (typeof asset['version'] === 'string') scene.version = asset['version'];
  return scene;
}
