/**
 * glTF 2.0 scene merge (GLB, and `.gltf` whose buffers and images are
 * embedded as data URIs), on glTF-Transform's document graph. Design:
 * docs/merge/scene.md.
 *
 * The parts are the document's textures, materials, meshes, nodes,
 * animations and its scene. Each has an identity that does not depend on its
 * index: a node's name path from the scene roots ("Robot/Arm/Hand"); a
 * texture's, material's, mesh's or animation's name; a stable id in `extras`
 * (`mediagitId` or `id`) where a name is missing or repeats among its peers.
 * Each part is a set of fields (a node's translation, rotation, scale, mesh;
 * a material's factors and texture slots; a mesh's primitives, compared by
 * their accessors' decoded data), and each field merges three-way on its
 * canonical value, in which references to other parts are their identities.
 *
 * The result is ours' document with theirs' changes applied to it, written by
 * glTF-Transform, so it is deterministic and reads back as glTF.
 */
import { createHash } from 'node:crypto';
import {
  Accessor,
  Animation,
  Format,
  Logger,
  Material,
  Mesh,
  Node,
  NodeIO,
  Property,
  Root,
  Scene,
  Texture,
  type Document,
  type JSONDocument,
  type TextureInfo,
} from '@gltf-transform/core';
import {
  readSides,
  readWhole,
  type MergeStrategy,
  type StrategyResult,
} from '../../merge-strategy.ts';
import type { MediaFormat } from '../../detect.ts';
import type { RandomAccess } from '../../info/random-access.ts';
import { mergeOrder, pick3 } from './order.ts';

type Kind = 'texture' | 'material' | 'mesh' | 'node' | 'animation' | 'scene';

/** A merge that cannot finish: its message names the part. */
class SceneConflict extends Error {}

/** A side's document with every part's identity. */
interface Keyed {
  readonly doc: Document;
  readonly keyOf: Map<Property, string>;
  readonly byKey: Record<Kind, Map<string, Property>>;
  /** Node key → its parent node's key (null for a root). */
  readonly parentOf: Map<string, string | null>;
  /** Node keys in the scene's root list, in order. */
  readonly roots: string[];
}

/** Maps a source side's part to the merged document's part with the same identity. */
interface Resolver {
  part<P extends Property>(kind: Kind, source: P): P;
  accessor(source: Accessor): Accessor;
}

interface Field<P extends Property> {
  readonly name: string;
  value(part: P, side: Keyed): string;
  apply(target: P, source: P, to: Resolver): void;
}

interface KindSpec<P extends Property> {
  readonly kind: Kind;
  list(doc: Document): P[];
  create(doc: Document, name: string): P;
  readonly fields: readonly Field<P>[];
}

/** JSON with sorted keys, so equal values give equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    return `[${Array.from(value as ArrayLike<unknown>, canonical).join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

function digest(data: Uint8Array | null): string {
  return data ? createHash('sha256').update(data).digest('hex') : 'none';
}

/** An accessor by its decoded content: type, component type and elements. */
function accessorValue(accessor: Accessor | null): string {
  if (!accessor) return 'none';
  const array = accessor.getArray();
  const bytes = array ? new Uint8Array(array.buffer, array.byteOffset, array.byteLength) : null;
  return `${accessor.getType()}:${accessor.getComponentType()}:${accessor.getNormalized()}:${digest(bytes)}`;
}

function keyOf(side: Keyed, part: Property | null): string | null {
  return part ? (side.keyOf.get(part) ?? '?') : null;
}

function scalar<P extends Property, V>(
  name: string,
  get: (part: P) => V,
  set: (part: P, value: V) => void,
): Field<P> {
  return {
    name,
    value: (part) => canonical(get(part)),
    apply: (target, source) => set(target, structuredClone(get(source))),
  };
}

const extras = <P extends Property>(): Field<P> =>
  scalar<P, Record<string, unknown>>(
    'extras',
    (p) => p.getExtras(),
    (p, v) => p.setExtras(v),
  );

const TEXTURES: KindSpec<Texture> = {
  kind: 'texture',
  list: (doc) => doc.getRoot().listTextures(),
  create: (doc, name) => doc.createTexture(name),
  fields: [
    {
      name: 'image',
      value: (t) => digest(t.getImage()),
      apply: (t, s) => {
        const image = s.getImage();
        t.setImage(image ? image.slice() : new Uint8Array(0));
      },
    },
    scalar(
      'mimeType',
      (t) => t.getMimeType(),
      (t, v) => t.setMimeType(v),
    ),
    scalar(
      'uri',
      (t) => t.getURI(),
      (t, v) => t.setURI(v),
    ),
    extras(),
  ],
};

type Slot = 'BaseColor' | 'Emissive' | 'Normal' | 'Occlusion' | 'MetallicRoughness';

/** A material's texture slot: which texture (by identity) and how it is sampled. */
function slot(name: Slot): Field<Material> {
  const texture = (m: Material): Texture | null => m[`get${name}Texture`]();
  const info = (m: Material): TextureInfo | null => m[`get${name}TextureInfo`]();
  return {
    name: `${name[0]!.toLowerCase()}${name.slice(1)}Texture`,
    value: (m, side) => {
      const i = info(m);
      return canonical({
        texture: keyOf(side, texture(m)),
        info: i && [
          i.getTexCoord(),
          i.getMagFilter(),
          i.getMinFilter(),
          i.getWrapS(),
          i.getWrapT(),
        ],
      });
    },
    apply: (m, s, to) => {
      const source = texture(s);
      m[`set${name}Texture`](source && to.part('texture', source));
      const [targetInfo, sourceInfo] = [info(m), info(s)];
      if (targetInfo && sourceInfo) targetInfo.copy(sourceInfo);
    },
  };
}

const MATERIALS: KindSpec<Material> = {
  kind: 'material',
  list: (doc) => doc.getRoot().listMaterials(),
  create: (doc, name) => doc.createMaterial(name),
  fields: [
    scalar(
      'alphaMode',
      (m) => m.getAlphaMode(),
      (m, v) => m.setAlphaMode(v),
    ),
    scalar(
      'alphaCutoff',
      (m) => m.getAlphaCutoff(),
      (m, v) => m.setAlphaCutoff(v),
    ),
    scalar(
      'doubleSided',
      (m) => m.getDoubleSided(),
      (m, v) => m.setDoubleSided(v),
    ),
    scalar(
      'baseColorFactor',
      (m) => m.getBaseColorFactor(),
      (m, v) => m.setBaseColorFactor(v),
    ),
    scalar(
      'emissiveFactor',
      (m) => m.getEmissiveFactor(),
      (m, v) => m.setEmissiveFactor(v),
    ),
    scalar(
      'metallicFactor',
      (m) => m.getMetallicFactor(),
      (m, v) => m.setMetallicFactor(v),
    ),
    scalar(
      'roughnessFactor',
      (m) => m.getRoughnessFactor(),
      (m, v) => m.setRoughnessFactor(v),
    ),
    scalar(
      'normalScale',
      (m) => m.getNormalScale(),
      (m, v) => m.setNormalScale(v),
    ),
    scalar(
      'occlusionStrength',
      (m) => m.getOcclusionStrength(),
      (m, v) => m.setOcclusionStrength(v),
    ),
    slot('BaseColor'),
    slot('Emissive'),
    slot('Normal'),
    slot('Occlusion'),
    slot('MetallicRoughness'),
    extras(),
  ],
};

const MESHES: KindSpec<Mesh> = {
  kind: 'mesh',
  list: (doc) => doc.getRoot().listMeshes(),
  create: (doc, name) => doc.createMesh(name),
  fields: [
    {
      // The primitives as one field: their geometry is one piece of work.
      name: 'primitives',
      value: (mesh, side) =>
        canonical(
          mesh.listPrimitives().map((p) => ({
            mode: p.getMode(),
            material: keyOf(side, p.getMaterial()),
            indices: accessorValue(p.getIndices()),
            attributes: Object.fromEntries(
              p.listSemantics().map((s) => [s, accessorValue(p.getAttribute(s))]),
            ),
            targets: p
              .listTargets()
              .map((t) =>
                Object.fromEntries(
                  t.listSemantics().map((s) => [s, accessorValue(t.getAttribute(s))]),
                ),
              ),
            extras: p.getExtras(),
          })),
        ),
      apply: (mesh, source, to) => {
        const doc = documentOf(mesh);
        for (const p of mesh.listPrimitives()) p.dispose();
        for (const s of source.listPrimitives()) {
          const p = doc
            .createPrimitive()
            .setMode(s.getMode())
            .setExtras(structuredClone(s.getExtras()));
          const material = s.getMaterial();
          if (material) p.setMaterial(to.part('material', material));
          const indices = s.getIndices();
          if (indices) p.setIndices(to.accessor(indices));
          for (const semantic of s.listSemantics()) {
            const a = s.getAttribute(semantic);
            if (a) p.setAttribute(semantic, to.accessor(a));
          }
          for (const st of s.listTargets()) {
            const t = doc.createPrimitiveTarget(st.getName());
            for (const semantic of st.listSemantics()) {
              const a = st.getAttribute(semantic);
              if (a) t.setAttribute(semantic, to.accessor(a));
            }
            p.addTarget(t);
          }
          mesh.addPrimitive(p);
        }
      },
    },
    scalar(
      'weights',
      (m) => m.getWeights(),
      (m, v) => m.setWeights(v),
    ),
    extras(),
  ],
};

const NODES: KindSpec<Node> = {
  kind: 'node',
  list: (doc) => doc.getRoot().listNodes(),
  create: (doc, name) => doc.createNode(name),
  fields: [
    scalar(
      'translation',
      (n) => n.getTranslation(),
      (n, v) => n.setTranslation(v),
    ),
    scalar(
      'rotation',
      (n) => n.getRotation(),
      (n, v) => n.setRotation(v),
    ),
    scalar(
      'scale',
      (n) => n.getScale(),
      (n, v) => n.setScale(v),
    ),
    scalar(
      'weights',
      (n) => n.getWeights(),
      (n, v) => n.setWeights(v),
    ),
    {
      name: 'mesh',
      value: (n, side) => canonical(keyOf(side, n.getMesh())),
      apply: (n, s, to) => {
        const mesh = s.getMesh();
        n.setMesh(mesh && to.part('mesh', mesh));
      },
    },
    {
      name: 'camera',
      value: (n) => {
        const c = n.getCamera();
        return canonical(
          c && [
            c.getName(),
            c.getType(),
            c.getYFov(),
            c.getAspectRatio(),
            c.getXMag(),
            c.getYMag(),
            c.getZNear(),
            c.getZFar(),
          ],
        );
      },
      apply: (n, s) => {
        const c = s.getCamera();
        n.getCamera()?.dispose();
        n.setCamera(c && documentOf(n).createCamera().copy(c));
      },
    },
    extras(),
  ],
};

const ANIMATIONS: KindSpec<Animation> = {
  kind: 'animation',
  list: (doc) => doc.getRoot().listAnimations(),
  create: (doc, name) => doc.createAnimation(name),
  fields: [
    {
      name: 'channels',
      value: (a, side) =>
        canonical(
          a.listChannels().map((c) => {
            const sampler = c.getSampler();
            return {
              node: keyOf(side, c.getTargetNode()),
              path: c.getTargetPath(),
              interpolation: sampler?.getInterpolation() ?? null,
              input: accessorValue(sampler?.getInput() ?? null),
              output: accessorValue(sampler?.getOutput() ?? null),
            };
          }),
        ),
      apply: (a, source, to) => {
        const doc = documentOf(a);
        for (const c of a.listChannels()) c.dispose();
        for (const s of a.listSamplers()) s.dispose();
        const samplers = new Map<Property, ReturnType<Document['createAnimationSampler']>>();
        for (const s of source.listSamplers()) {
          const sampler = doc.createAnimationSampler(s.getName());
          sampler.setInterpolation(s.getInterpolation());
          const [input, output] = [s.getInput(), s.getOutput()];
          if (input) sampler.setInput(to.accessor(input));
          if (output) sampler.setOutput(to.accessor(output));
          samplers.set(s, sampler);
          a.addSampler(sampler);
        }
        for (const c of source.listChannels()) {
          const channel = doc.createAnimationChannel(c.getName());
          const path = c.getTargetPath();
          if (path) channel.setTargetPath(path);
          const [node, sampler] = [c.getTargetNode(), c.getSampler()];
          if (node) channel.setTargetNode(to.part('node', node));
          const mapped = sampler && samplers.get(sampler);
          if (mapped) channel.setSampler(mapped);
          a.addChannel(channel);
        }
      },
    },
    extras(),
  ],
};

const SCENES: KindSpec<Scene> = {
  kind: 'scene',
  list: (doc) => doc.getRoot().listScenes(),
  create: (doc, name) => doc.createScene(name),
  fields: [extras()],
};

/** In dependency order: a part's references are to kinds merged before it (nodes' children aside). */
const KINDS = [TEXTURES, MATERIALS, MESHES, NODES, ANIMATIONS, SCENES] as const;

const documentOf = (part: Property): Document => {
  const doc = DOCS.get(part.getGraph());
  if (!doc) throw new Error('a part outside the merged documents');
  return doc;
};
const DOCS = new WeakMap<object, Document>();

/** A part's stable id from its extras, when it has one. */
function extrasId(part: Property): string | undefined {
  const extrasValue = part.getExtras();
  const id = extrasValue['mediagitId'] ?? extrasValue['id'];
  return typeof id === 'string' || typeof id === 'number' ? `{${id}}` : undefined;
}

function nameOf(part: Property): string {
  if (part instanceof Texture) return part.getName() || part.getURI();
  return part.getName();
}

/**
 * Labels for peers: each one's name when it has one and no peer shares it,
 * else its extras id, else what `usedBy` says of it (the material slot that
 * shows an unnamed texture, the node that places an unnamed mesh); a part
 * with none of these is a SceneConflict.
 */
function labels(
  kind: Kind,
  peers: readonly Property[],
  where: string,
  usedBy: (part: Property) => string | undefined = () => undefined,
): string[] {
  const counts = new Map<string, number>();
  for (const p of peers) counts.set(nameOf(p), (counts.get(nameOf(p)) ?? 0) + 1);
  const out = peers.map((p, i) => {
    const name = nameOf(p);
    if (name !== '' && counts.get(name) === 1) return name;
    const label = extrasId(p) ?? (name === '' ? usedBy(p) : undefined);
    if (label !== undefined) return label;
    if (kind === 'scene' && peers.length === 1) return '(scene)';
    throw new SceneConflict(
      `${kind} ${name === '' ? `#${i}` : `'${name}'`}${where} has no unique name and no extras id`,
    );
  });
  if (new Set(out).size !== out.length) {
    throw new SceneConflict(`${kind}s${where} have names and extras ids that repeat`);
  }
  return out;
}

const SLOTS: readonly Slot[] = [
  'BaseColor',
  'Emissive',
  'Normal',
  'Occlusion',
  'MetallicRoughness',
];

function keyed(doc: Document): Keyed {
  DOCS.set(doc.getGraph(), doc);
  const side: Keyed = {
    doc,
    keyOf: new Map(),
    byKey: {
      texture: new Map(),
      material: new Map(),
      mesh: new Map(),
      node: new Map(),
      animation: new Map(),
      scene: new Map(),
    },
    parentOf: new Map(),
    roots: [],
  };
  const add = (kind: Kind, part: Property, key: string) => {
    side.keyOf.set(part, key);
    side.byKey[kind].set(key, part);
  };
  const root = doc.getRoot();
  const visit = (children: readonly Node[], parent: string | null) => {
    const where = parent === null ? '' : ` under node '${parent}'`;
    labels('node', children, where).forEach((label, i) => {
      const node = children[i]!;
      const key = parent === null ? label : `${parent}/${label}`;
      add('node', node, key);
      side.parentOf.set(key, parent);
      visit(node.listChildren(), key);
    });
  };
  visit(
    root.listNodes().filter((n) => n.getParentNode() === null),
    null,
  );
  const materials = root.listMaterials();
  labels('material', materials, '').forEach((label, i) => add('material', materials[i]!, label));
  const textureUse = (texture: Property): string | undefined => {
    for (const m of materials) {
      for (const s of SLOTS) {
        if (m[`get${s}Texture`]() === texture) return `(${s} of material '${side.keyOf.get(m)}')`;
      }
    }
    return undefined;
  };
  const meshUse = (mesh: Property): string | undefined => {
    const node = root.listNodes().find((n) => n.getMesh() === mesh);
    return node && `(mesh of node '${side.keyOf.get(node)}')`;
  };
  const others: [Kind, Property[], ((p: Property) => string | undefined)?][] = [
    ['texture', root.listTextures(), textureUse],
    ['mesh', root.listMeshes(), meshUse],
    ['animation', root.listAnimations()],
    ['scene', root.listScenes()],
  ];
  for (const [kind, parts, usedBy] of others) {
    labels(kind, parts, '', usedBy).forEach((label, i) => add(kind, parts[i]!, label));
  }
  const scene = root.listScenes()[0];
  if (scene) side.roots.push(...scene.listChildren().map((n) => side.keyOf.get(n) ?? '?'));
  return side;
}

const kindName = (kind: Kind, key: string) => (kind === 'scene' ? 'the scene' : `${kind} '${key}'`);

/** What a side must not hold for this merge: checked on the JSON before the graph is built. */
function unsupported(jsonDoc: JSONDocument, format: string): string | undefined {
  const json = jsonDoc.json;
  if ((json.extensionsUsed ?? []).length > 0) {
    return `uses extensions (${(json.extensionsUsed ?? []).join(', ')}), which are not merged`;
  }
  if ((json.skins ?? []).length > 0) return 'has skins, which are not merged';
  if ((json.scenes ?? []).length > 1) return 'has several scenes, which are not merged';
  if ((json.buffers ?? []).length > 1) return 'has several buffers';
  if (format === 'gltf') {
    const external = [...(json.buffers ?? []), ...(json.images ?? [])].find(
      (r) => r.uri !== undefined && !r.uri.startsWith('data:'),
    );
    if (external?.uri !== undefined) {
      return `references the external file '${external.uri}', which a merge of one file cannot see`;
    }
  }
  return undefined;
}

function newIO(): NodeIO {
  return new NodeIO().setLogger(new Logger(Logger.Verbosity.SILENT));
}

/** One side as a document, or why it is not one this strategy merges. */
async function readDocument(bytes: Uint8Array, format: string): Promise<Document | string> {
  const io = newIO();
  let jsonDoc: JSONDocument;
  try {
    if (format === 'glb') {
      jsonDoc = await io.binaryToJSON(bytes);
    } else {
      const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as JSONDocument['json'];
      if (typeof json !== 'object' || json === null || Array.isArray(json))
        return 'not a glTF JSON object';
      jsonDoc = { json, resources: {} };
    }
  } catch (error) {
    return `not ${format === 'glb' ? 'a GLB' : 'glTF JSON'} (${(error as Error).message})`;
  }
  const reason = unsupported(jsonDoc, format);
  if (reason !== undefined) return reason;
  try {
    const doc = await io.readJSON(jsonDoc);
    // Embedded data gets a random resource name when read: none is kept.
    for (const t of doc.getRoot().listTextures()) if (t.getURI().startsWith('__')) t.setURI('');
    for (const b of doc.getRoot().listBuffers()) if (b.getURI().startsWith('__')) b.setURI('');
    return doc;
  } catch (error) {
    return `glTF-Transform cannot read it (${(error as Error).message})`;
  }
}

async function writeDocument(doc: Document, format: string): Promise<Uint8Array> {
  const io = newIO();
  if (format === 'glb') return io.writeBinary(doc);
  const { json, resources } = await io.writeJSON(doc, { format: Format.GLTF });
  const embed = (uri: string | undefined, mime: string) => {
    const data = uri === undefined ? undefined : resources[uri];
    return data ? `data:${mime};base64,${Buffer.from(data).toString('base64')}` : uri;
  };
  for (const buffer of json.buffers ?? []) {
    const uri = embed(buffer.uri, 'application/octet-stream');
    if (uri !== undefined) buffer.uri = uri;
  }
  for (const image of json.images ?? []) {
    const uri = embed(image.uri, image.mimeType ?? 'application/octet-stream');
    if (uri !== undefined) image.uri = uri;
  }
  return Buffer.from(`${JSON.stringify(json, null, 2)}\n`, 'utf8');
}

/** Every field's value of a part, for "unchanged" tests. */
function partValue<P extends Property>(spec: KindSpec<P>, part: P, side: Keyed): string {
  return spec.fields.map((f) => f.value(part, side)).join('\n');
}

interface Merged {
  readonly doc: Document;
  readonly fromTheirs: string[];
}

function childLists(side: Keyed): Map<string | null, string[]> {
  const lists = new Map<string | null, string[]>();
  for (const [key, parent] of side.parentOf) {
    const list = lists.get(parent) ?? [];
    list.push(key);
    lists.set(parent, list);
  }
  return lists;
}

/** Applies theirs' changes to ours' document; throws SceneConflict naming a part. */
function mergeDocuments(base: Keyed, ours: Keyed, theirs: Keyed): Merged {
  const target = ours;
  const doc = ours.doc;
  // Each side's children of each node, in order, before theirs' new nodes join ours.
  const lists = [childLists(base), childLists(ours), childLists(theirs)] as const;
  const fromTheirs: string[] = [];
  const deleted = new Set<Property>();
  const accessors = new Map<Accessor, Accessor>();
  const inUse = (a: Accessor) => a.listParents().some((p) => !(p instanceof Root));
  const usedBefore = new Set(doc.getRoot().listAccessors().filter(inUse));
  const buffer = () => doc.getRoot().listBuffers()[0] ?? doc.createBuffer();
  const to: Resolver = {
    part<P extends Property>(kind: Kind, source: P): P {
      const key = theirs.keyOf.get(source);
      const part = key === undefined ? undefined : target.byKey[kind].get(key);
      if (part === undefined || deleted.has(part)) {
        throw new SceneConflict(`theirs uses ${kind} '${key ?? '?'}', which ours deleted`);
      }
      return part as P;
    },
    accessor(source) {
      let copy = accessors.get(source);
      if (!copy) {
        copy = doc.createAccessor(source.getName()).copy(source, () => buffer());
        copy.setBuffer(buffer());
        accessors.set(source, copy);
      }
      return copy;
    },
  };

  const mergeKind = <P extends Property>(spec: KindSpec<P>) => {
    const [b, o, t] = [base.byKey[spec.kind], ours.byKey[spec.kind], theirs.byKey[spec.kind]];
    const keys = [...o.keys(), ...[...t.keys()].filter((k) => !o.has(k))];
    for (const key of keys) {
      const [bp, op, tp] = [
        b.get(key) as P | undefined,
        o.get(key) as P | undefined,
        t.get(key) as P | undefined,
      ];
      const name = kindName(spec.kind, key);
      if (op && tp) {
        const changed: Field<P>[] = [];
        for (const field of spec.fields) {
          const merge = pick3(
            bp && field.value(bp, base),
            field.value(op, ours),
            field.value(tp, theirs),
          );
          if (merge === 'conflict') {
            throw new SceneConflict(
              bp
                ? `both sides changed ${name}${spec.kind === 'scene' ? '' : ` ${field.name}`}`
                : `both sides added ${name}, differently`,
            );
          }
          if (merge === 'theirs') changed.push(field);
        }
        for (const field of changed) field.apply(op, tp, to);
        if (changed.length > 0) fromTheirs.push(name);
      } else if (op && bp) {
        if (partValue(spec, bp, base) !== partValue(spec, op, ours)) {
          throw new SceneConflict(`theirs deleted ${name}, which ours changed`);
        }
        deleted.add(op);
      } else if (tp && bp) {
        if (partValue(spec, bp, base) !== partValue(spec, tp, theirs)) {
          throw new SceneConflict(`ours deleted ${name}, which theirs changed`);
        }
      } else if (tp) {
        const part = spec.create(doc, tp.getName());
        target.byKey[spec.kind].set(key, part);
        target.keyOf.set(part, key);
        if (spec.kind === 'node') target.parentOf.set(key, theirs.parentOf.get(key) ?? null);
        for (const field of spec.fields) field.apply(part, tp, to);
        fromTheirs.push(name);
      }
    }
  };

  // Nodes are made before anything refers to them: animations come after.
  for (const spec of KINDS)
    (mergeKind as (s: KindSpec<Property>) => void)(spec as KindSpec<Property>);

  // The hierarchy: each kept node under its parent (by its path), in merged order.
  const kept = [...target.byKey.node].filter(([, n]) => !deleted.has(n)).map(([k]) => k);
  const keptSet = new Set(kept);
  const keptChildren = new Map<string | null, Set<string>>();
  for (const key of kept) {
    const parent = target.parentOf.get(key) ?? null;
    const set = keptChildren.get(parent) ?? new Set<string>();
    set.add(key);
    keptChildren.set(parent, set);
  }
  for (const key of kept) {
    const parent = target.parentOf.get(key) ?? null;
    if (parent !== null && !keptSet.has(parent)) {
      throw new SceneConflict(
        `one side deleted node '${parent}', the other added or changed node '${key}'`,
      );
    }
  }
  const arrange = (parent: string | null) => {
    const [b, o, t] = lists.map((l) => l.get(parent) ?? []) as [string[], string[], string[]];
    const order = mergeOrder(b, o, t, keptChildren.get(parent) ?? new Set());
    if (!order) {
      throw new SceneConflict(
        parent === null
          ? 'both sides reordered the root nodes'
          : `both sides reordered the children of node '${parent}'`,
      );
    }
    return order.map((k) => target.byKey.node.get(k) as Node);
  };
  for (const node of doc.getRoot().listNodes())
    for (const child of node.listChildren()) node.removeChild(child);
  for (const key of [null, ...kept]) {
    const children = arrange(key);
    if (key === null) continue;
    const node = target.byKey.node.get(key) as Node;
    for (const child of children) node.addChild(child);
  }
  // The scene's roots: the merged roots that either side has in its scene.
  const scene = [...target.byKey.scene.values()].find((s) => !deleted.has(s)) as Scene | undefined;
  if (scene) {
    const inScene = new Set([...ours.roots, ...theirs.roots]);
    const removed = base.roots.filter((k) => !ours.roots.includes(k) || !theirs.roots.includes(k));
    for (const child of scene.listChildren()) scene.removeChild(child);
    for (const node of arrange(null)) {
      const key = target.keyOf.get(node) ?? '';
      if (inScene.has(key) && !removed.includes(key)) scene.addChild(node);
    }
    doc.getRoot().setDefaultScene(scene);
  }

  // A part deleted on one side that a kept part still uses is a conflict, not a dangling reference.
  for (const part of deleted) {
    const user = part
      .listParents()
      .find((p) => !(p instanceof Root) && !deleted.has(p) && !isDeletedOwner(p, deleted));
    if (user) {
      const owner = ownerKey(user, target);
      throw new SceneConflict(
        `one side deleted ${part.propertyType.toLowerCase()} '${target.keyOf.get(part) ?? '?'}', which ${owner} still uses`,
      );
    }
  }
  for (const part of deleted) {
    // What a part owns goes with it, so that its geometry is left unused.
    if (part instanceof Mesh) {
      for (const p of part.listPrimitives()) {
        for (const t of p.listTargets()) t.dispose();
        p.dispose();
      }
    }
    if (part instanceof Animation) {
      for (const c of part.listChannels()) c.dispose();
      for (const s of part.listSamplers()) s.dispose();
    }
    part.dispose();
  }
  // Geometry the merge left unused (replaced primitives and samplers, deleted parts).
  for (const accessor of doc.getRoot().listAccessors()) {
    if (usedBefore.has(accessor) && !inUse(accessor)) accessor.dispose();
  }
  return { doc, fromTheirs };
}

/** Whether `p` (a primitive, channel, sampler) belongs to a part that is deleted. */
function isDeletedOwner(p: Property, deleted: ReadonlySet<Property>): boolean {
  return p
    .listParents()
    .some((q) => deleted.has(q) || (!(q instanceof Root) && isDeletedOwner(q, deleted)));
}

function ownerKey(p: Property, side: Keyed): string {
  const key = side.keyOf.get(p);
  if (key !== undefined) return `${p.propertyType.toLowerCase()} '${key}'`;
  const parent = p.listParents().find((q) => !(q instanceof Root));
  return parent ? ownerKey(parent, side) : p.propertyType.toLowerCase();
}

async function readKeyed(bytes: Uint8Array, format: string): Promise<Keyed | string> {
  const doc = await readDocument(bytes, format);
  return typeof doc === 'string' ? doc : keyed(doc);
}

export const gltfMergeStrategy: MergeStrategy = {
  name: 'gltf-scene',
  accepts: (format) => format.format === 'glb' || format.format === 'gltf',
  maxBytes: 256 * 1024 * 1024,
  async merge(input): Promise<StrategyResult> {
    const format = input.format.format;
    const [baseBytes, oursBytes, theirsBytes] = await readSides(input);
    const sides: Keyed[] = [];
    try {
      for (const [label, bytes] of [
        ['base', baseBytes],
        ['ours', oursBytes],
        ['theirs', theirsBytes],
      ] as const) {
        const side = await readKeyed(bytes, format);
        if (typeof side === 'string') return { declined: `${label} ${side}` };
        sides.push(side);
      }
      const [base, ours, theirs] = sides as [Keyed, Keyed, Keyed];
      const { doc, fromTheirs } = mergeDocuments(base, ours, theirs);
      const merged = await writeDocument(doc, format);
      return {
        merged,
        summary: `merged glTF scene (from theirs: ${fromTheirs.join(', ') || 'nothing'})`,
      };
    } catch (error) {
      if (error instanceof SceneConflict) return { conflict: error.message };
      // glTF-Transform refusing a document it read (a texture with no image, an
      // accessor with no buffer...): not one this merge can write.
      return { declined: `glTF-Transform could not merge it (${(error as Error).message})` };
    }
  },
  describe: describeScene,
};

/** What changed between two versions, part by part ("node 'Arm' changed: translation"). */
async function describeScene(
  before: RandomAccess,
  after: RandomAccess,
  format: MediaFormat,
): Promise<string[]> {
  let a: Keyed | string;
  let b: Keyed | string;
  try {
    a = await readKeyed(await readWhole(before), format.format);
    b = await readKeyed(await readWhole(after), format.format);
  } catch (error) {
    if (error instanceof SceneConflict) return [`parts cannot be told apart: ${error.message}`];
    throw error;
  }
  if (typeof a === 'string' || typeof b === 'string') {
    return [`not compared part by part: ${typeof a === 'string' ? a : String(b)}`];
  }
  const lines: string[] = [];
  for (const spec of KINDS as readonly KindSpec<Property>[]) {
    const [x, y] = [a.byKey[spec.kind], b.byKey[spec.kind]];
    for (const [key, part] of x) {
      const other = y.get(key);
      const name = kindName(spec.kind, key);
      if (!other) {
        lines.push(`${name} removed`);
        continue;
      }
      const changed = spec.fields
        .filter((f) => f.value(part, a as Keyed) !== f.value(other, b as Keyed))
        .map((f) => f.name);
      if (changed.length > 0) lines.push(`${name} changed: ${changed.join(', ')}`);
    }
    for (const key of y.keys()) if (!x.has(key)) lines.push(`${kindName(spec.kind, key)} added`);
  }
  return lines.length > 0 ? lines : ['scene parts unchanged'];
}
