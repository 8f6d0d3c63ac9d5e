/**
 * Small glTF scenes for the scene-merge tests, made with glTF-Transform, and
 * what a merged file reads back as (through glTF-Transform and the Khronos
 * validator), so tests compare decoded scenes, not bytes.
 */
import { createRequire } from 'node:module';
import { Document, Format, Logger, Node, NodeIO } from '@gltf-transform/core';

export type Vec3 = [number, number, number];
export type Vec4 = [number, number, number, number];

/** A scene: named nodes under one root node 'Robot', each with its own mesh and a material. */
export interface SceneSpec {
  readonly nodes: Readonly<Record<string, { translation: Vec3; material: string; size?: number }>>;
  readonly materials: Readonly<Record<string, Vec4>>;
  /** Animated nodes: the translation keyframes of an animation named after the node. */
  readonly animations?: Readonly<Record<string, readonly Vec3[]>>;
  /** The base-colour texture of material 'Skin' (PNG bytes), when it has one. */
  readonly texture?: Uint8Array;
  /** Nodes carrying `extras.mediagitId` and this display name instead of their key. */
  readonly names?: Readonly<Record<string, string>>;
  /** Meshes left without names (they are then told apart by the node that places them). */
  readonly unnamedMeshes?: boolean;
}

export function buildDocument(spec: SceneSpec): Document {
  const doc = new Document();
  doc.setLogger(new Logger(Logger.Verbosity.SILENT));
  const buffer = doc.createBuffer();
  const scene = doc.createScene('Main');
  doc.getRoot().setDefaultScene(scene);
  const root = doc.createNode('Robot');
  scene.addChild(root);
  const materials = new Map(
    Object.entries(spec.materials).map(([name, colour]) => [
      name,
      doc.createMaterial(name).setBaseColorFactor(colour),
    ]),
  );
  if (spec.texture) {
    const texture = doc.createTexture('skin').setImage(spec.texture).setMimeType('image/png');
    materials.get('Skin')?.setBaseColorTexture(texture);
  }
  const nodes = new Map<string, Node>();
  for (const [key, node] of Object.entries(spec.nodes)) {
    const size = node.size ?? 1;
    const positions = doc
      .createAccessor(`${key}-position`)
      .setType('VEC3')
      .setBuffer(buffer)
      .setArray(new Float32Array([0, 0, 0, size, 0, 0, 0, size, 0]));
    const uvs = doc
      .createAccessor(`${key}-uv`)
      .setType('VEC2')
      .setBuffer(buffer)
      .setArray(new Float32Array([0, 0, 1, 0, 0, 1]));
    const primitive = doc
      .createPrimitive()
      .setAttribute('POSITION', positions)
      .setAttribute('TEXCOORD_0', uvs);
    const material = materials.get(node.material);
    if (material) primitive.setMaterial(material);
    const mesh = doc.createMesh(spec.unnamedMeshes ? '' : `${key}-mesh`).addPrimitive(primitive);
    const name = spec.names?.[key];
    const n = doc
      .createNode(name ?? key)
      .setTranslation(node.translation)
      .setMesh(mesh);
    if (name !== undefined) n.setExtras({ mediagitId: key });
    nodes.set(key, n);
    root.addChild(n);
  }
  for (const [key, frames] of Object.entries(spec.animations ?? {})) {
    const input = doc
      .createAccessor(`${key}-times`)
      .setType('SCALAR')
      .setBuffer(buffer)
      .setArray(new Float32Array(frames.map((_, i) => i)));
    const output = doc
      .createAccessor(`${key}-moves`)
      .setType('VEC3')
      .setBuffer(buffer)
      .setArray(new Float32Array(frames.flat()));
    const sampler = doc.createAnimationSampler().setInput(input).setOutput(output);
    const channel = doc.createAnimationChannel().setSampler(sampler).setTargetPath('translation');
    const target = nodes.get(key);
    if (target) channel.setTargetNode(target);
    doc.createAnimation(key).addSampler(sampler).addChannel(channel);
  }
  return doc;
}

const io = () => new NodeIO().setLogger(new Logger(Logger.Verbosity.SILENT));

export async function buildGlb(spec: SceneSpec): Promise<Buffer> {
  return Buffer.from(await io().writeBinary(buildDocument(spec)));
}

/** The scene as a `.gltf` with its buffer and images embedded as data URIs. */
export async function buildGltf(spec: SceneSpec): Promise<Buffer> {
  const { json, resources } = await io().writeJSON(buildDocument(spec), { format: Format.GLTF });
  for (const holder of [...(json.buffers ?? []), ...(json.images ?? [])]) {
    const data = holder.uri === undefined ? undefined : resources[holder.uri];
    if (data)
      holder.uri = `data:application/octet-stream;base64,${Buffer.from(data).toString('base64')}`;
  }
  return Buffer.from(JSON.stringify(json, null, 2));
}

/** What a scene file reads back as, by name: enough to compare a merge with its expectation. */
export interface SceneSummary {
  nodes: Record<
    string,
    { translation: number[]; parent: string | null; children: string[]; mesh: string | null }
  >;
  meshes: Record<string, { material: string | null; positions: number[] }[]>;
  materials: Record<string, { colour: number[]; texture: string | null }>;
  textures: Record<string, number>;
  animations: Record<string, { node: string | null; path: string | null; output: number[] }[]>;
  roots: string[];
  /** How many accessors the file holds: a merge leaves no geometry behind that no part uses. */
  accessors: number;
}

export async function summarize(
  bytes: Uint8Array,
  format: 'glb' | 'gltf' = 'glb',
): Promise<SceneSummary> {
  const doc =
    format === 'glb'
      ? await io().readBinary(bytes)
      : await io().readJSON({
          json: JSON.parse(Buffer.from(bytes).toString('utf8')),
          resources: {},
        });
  const root = doc.getRoot();
  const nodeName = (n: Node) => (n.getExtras()['mediagitId'] as string | undefined) ?? n.getName();
  const sorted = <T>(entries: [string, T][]) =>
    Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    nodes: sorted(
      root.listNodes().map((n) => {
        const parent = n.getParentNode();
        return [
          nodeName(n),
          {
            translation: [...n.getTranslation()],
            parent: parent && nodeName(parent),
            children: n.listChildren().map(nodeName),
            mesh: n.getMesh()?.getName() ?? null,
          },
        ];
      }),
    ),
    meshes: sorted(
      root.listMeshes().map((m) => [
        m.getName() ||
          `(mesh of ${
            m
              .listParents()
              .find((p) => p instanceof Node)
              ?.getName() ?? '?'
          })`,
        m.listPrimitives().map((p) => ({
          material: p.getMaterial()?.getName() ?? null,
          positions: [...(p.getAttribute('POSITION')?.getArray() ?? [])],
        })),
      ]),
    ),
    materials: sorted(
      root.listMaterials().map((m) => [
        m.getName(),
        {
          colour: [...m.getBaseColorFactor()],
          texture: m.getBaseColorTexture()?.getName() ?? null,
        },
      ]),
    ),
    textures: sorted(root.listTextures().map((t) => [t.getName(), t.getImage()?.length ?? 0])),
    animations: sorted(
      root.listAnimations().map((a) => [
        a.getName(),
        a.listChannels().map((c) => ({
          node: c.getTargetNode() && nodeName(c.getTargetNode()!),
          path: c.getTargetPath(),
          output: [...(c.getSampler()?.getOutput()?.getArray() ?? [])],
        })),
      ]),
    ),
    roots: (root.getDefaultScene()?.listChildren() ?? []).map(nodeName),
    accessors: root.listAccessors().length,
  };
}

interface ValidatorReport {
  issues: { numErrors: number; messages: { code: string; message: string; severity: number }[] };
}
const validator = createRequire(import.meta.url)('gltf-validator') as {
  validateBytes(data: Uint8Array, options?: { format?: 'glb' | 'gltf' }): Promise<ValidatorReport>;
};

/** The Khronos glTF validator's errors for a file (none for a valid one). */
export async function validatorErrors(
  bytes: Uint8Array,
  format: 'glb' | 'gltf' = 'glb',
): Promise<string[]> {
  const report = await validator.validateBytes(new Uint8Array(bytes), { format });
  return report.issues.messages
    .filter((m) => m.severity === 0)
    .map((m) => `${m.code}: ${m.message}`);
}
