import type { RecordedEvent, Upcaster } from './port.js';

/**
 * Upcasters turn an event stored at an old `metadata.schema_version` into the current shape.
 * One upcaster is registered per (event type, version it reads); applying them chains
 * v1 → v2 → … until no upcaster matches. A renamed event type reads under its current name first
 * (its data and version unchanged), so a type's version upcasters see every event of that type.
 * Last, a type's `fillDefaults` step gives an event written before a field was added that field's
 * default (an addition needs no new version: its default says what the event meant).
 * Every read path of every adapter runs `apply`, so consumers only ever see current names and shapes.
 */
export class UpcasterRegistry {
  private readonly byKey = new Map<string, Upcaster>();
  private readonly renames = new Map<string, string>();
  private readonly fills = new Map<string, Upcaster>();

  /** Events stored as `oldType` read as `newType`. */
  renameType(oldType: string, newType: string): this {
    if (this.renames.has(oldType)) throw new Error(`${oldType} is already renamed`);
    if (oldType === newType || this.currentName(newType) === oldType) {
      throw new Error(`renaming ${oldType} to ${newType} would loop`);
    }
    this.renames.set(oldType, newType);
    return this;
  }

  /** `upcast` receives an event at `fromVersion`; its result is stamped with `fromVersion + 1`. */
  register(type: string, fromVersion: number, upcast: Upcaster): this {
    const key = registryKey(type, fromVersion);
    if (this.byKey.has(key)) throw new Error(`an upcaster for ${type} v${fromVersion} is already registered`);
    this.byKey.set(key, upcast);
    return this;
  }

  /**
   * `fill` completes every event of `type` at its current version with the fields added since it was
   * written; it runs on events written today too, so it must return those as they are.
   */
  fillDefaults(type: string, fill: Upcaster): this {
    if (this.fills.has(type)) throw new Error(`defaults for ${type} are already registered`);
    this.fills.set(type, fill);
    return this;
  }

  apply(event: RecordedEvent): RecordedEvent {
    const type = this.currentName(event.type);
    let current = type === event.type ? event : { ...event, type };
    for (;;) {
      const version = current.metadata.schema_version;
      const upcast = this.byKey.get(registryKey(current.type, version));
      if (!upcast) return this.fills.get(current.type)?.(current) ?? current;
      const next = upcast(current);
      // Stamped by the registry so that a forgetful upcaster cannot loop forever.
      current = { ...next, metadata: { ...next.metadata, schema_version: version + 1 } };
    }
  }

  private currentName(type: string): string {
    let name = type;
    for (let next = this.renames.get(name); next !== undefined; next = this.renames.get(name)) name = next;
    return name;
  }
}

function registryKey(type: string, version: number): string {
  return `${type}@${version}`;
}

/** A registry with nothing registered: `apply` is the identity. */
export const NO_UPCASTERS = new UpcasterRegistry();
