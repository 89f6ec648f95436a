// TypeScript types of the Cirrus JS API for web apps (docs/web-apps.md). Add to your project's
// `types` or reference it: /// <reference path="web-apps.d.ts" />

interface CirrusAppInfo {
  /** Reverse-domain app id, e.g. "org.example.notes". */
  readonly id: string;
  readonly name: string;
  readonly short_name: string;
  readonly version: string;
  /** Permissions the app holds now ("network", "notifications", "background", "user-files", "launch-intents"). */
  readonly permissions: readonly string[];
  /** Permissions its manifest asks for. */
  readonly requested: readonly string[];
}

type CirrusAppState = "active" | "paused";

interface CirrusEventMap {
  /** The app went to the background (document.visibilityState is "hidden"). */
  pause: Event;
  /** The app came back to the foreground. */
  resume: Event;
}

interface Cirrus extends EventTarget {
  readonly app: CirrusAppInfo;
  readonly state: CirrusAppState;
  /** Asks for a permission the manifest lists. */
  requestPermission(name: string): Promise<"granted" | "denied">;
  /** Ends the app. */
  close(): void;
  /** The user's files; present only while the app holds the "user-files" permission. */
  readonly files?: CirrusFiles;
  /** The system image's build description; absent where the system does not describe itself. */
  readonly device?: CirrusDeviceInfo;
  /** System state; present only for apps signed with the platform key (the system apps). */
  readonly system?: CirrusSystem;
  addEventListener<K extends keyof CirrusEventMap>(
    type: K,
    listener: (this: Cirrus, ev: CirrusEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof CirrusEventMap>(
    type: K,
    listener: (this: Cirrus, ev: CirrusEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
}

interface CirrusFileEntry {
  readonly name: string;
  readonly kind: "file" | "directory";
  /** Bytes. */
  readonly size: number;
  /** Last modification, milliseconds since the epoch. */
  readonly modified: number;
}

/**
 * The user's files (/data/user/0, mirrored by cloud sync). Paths are relative and "/"-separated
 * ("Documents/Notes/Ideas.md"); "." / ".." components, hidden names (leading "."), backslashes and
 * control characters are refused. Promises reject with an Error whose `name` is one of
 * "InvalidPathError", "NotFoundError", "AlreadyExistsError", "TooLargeError", "EncodingError",
 * "IOError".
 */
interface CirrusFiles {
  /** Entries of a directory ("" is the root), sorted by name; a missing directory lists as []. */
  list(dir?: string): Promise<CirrusFileEntry[]>;
  /** A file's UTF-8 text (at most 1 MiB). */
  read(path: string): Promise<string>;
  /** Replaces a file's text atomically (at most 1 MiB), creating missing directories. */
  write(path: string, text: string): Promise<void>;
  /** Renames a file or directory; never replaces an existing `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file, or an empty directory. */
  remove(path: string): Promise<void>;
}

interface CirrusDeviceInfo {
  /** The device definition, e.g. "qemu-x86_64". */
  readonly device: string;
  readonly description: string;
  /** The build of the system image. */
  readonly build_id: string;
  readonly kernel_version: string;
}

interface CirrusSyncStatus {
  readonly state: "idle" | "syncing" | "waiting" | "paused";
  /** Why it waits, or "". */
  readonly detail: string;
  /** Last completed cycle, milliseconds since the epoch; 0 if none yet. */
  readonly lastSyncMs: number;
  readonly filesDone: number;
  readonly filesTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Deletions held back until the user confirms them. */
  readonly heldDeletes: number;
  readonly errors: readonly string[];
  readonly paused: boolean;
}

interface CirrusSystem {
  /** Cloud sync's status (org.cirrus.Sync1). */
  syncStatus(): Promise<CirrusSyncStatus>;
}

interface Navigator {
  readonly cirrus: Cirrus;
}
