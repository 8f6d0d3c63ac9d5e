/**
 * A backend whose implementation is loaded on its first request. Opening a
 * cloud backend then costs nothing until it is used: the vendor SDKs (about
 * a second of startup and ~50 MiB each, measured 2026-12-03) are imported
 * by the commands that reach a bucket, not by every command. An error of
 * the implementation's constructor (a missing region, say) surfaces at the
 * first request, as that request's failure.
 */
import type {
  ObjectHead,
  PutOptions,
  SignedRequest,
  SignOptions,
  StorageBackend,
  StorageCapabilities,
} from './backend.ts';
import { checkKey } from './backend.ts';

export class LazyBackend implements StorageBackend {
  readonly url: string;
  readonly capabilities: StorageCapabilities;
  readonly #load: () => Promise<StorageBackend>;
  #loaded: Promise<StorageBackend> | undefined;

  /** `url` must be the one the loaded backend will have (its canonical form). */
  constructor(url: string, capabilities: StorageCapabilities, load: () => Promise<StorageBackend>) {
    this.url = url;
    this.capabilities = capabilities;
    this.#load = load;
  }

  /** The implementation, loaded once. */
  backend(): Promise<StorageBackend> {
    return (this.#loaded ??= this.#load());
  }

  async get(key: string): Promise<Uint8Array> {
    return (await this.backend()).get(key);
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    return (await this.backend()).getRange(key, start, end);
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<{ etag: string }> {
    return (await this.backend()).put(key, data, options);
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    return (await this.backend()).head(key);
  }

  async *list(prefix: string): AsyncIterable<string> {
    yield* (await this.backend()).list(prefix);
  }

  async delete(key: string): Promise<void> {
    return (await this.backend()).delete(key);
  }

  child(prefix: string): StorageBackend {
    const url = `${this.url}/${checkKey(prefix)}`;
    return new LazyBackend(url, this.capabilities, async () =>
      (await this.backend()).child(prefix),
    );
  }

  async sign(key: string, options: SignOptions): Promise<SignedRequest> {
    const backend = await this.backend();
    if (!backend.sign) throw new Error(`${this.url} cannot sign requests`);
    return backend.sign(key, options);
  }
}
