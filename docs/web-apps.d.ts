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

interface Navigator {
  readonly cirrus: Cirrus;
}
