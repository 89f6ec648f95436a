// The Cirrus JS API, injected by cirrus-web-host at document start into the app's own pages
// (docs/web-apps.md, types in docs/web-apps.d.ts).
(() => {
  'use strict';
  const info = Object.freeze(__CIRRUS_APP_INFO__);
  Object.freeze(info.permissions);
  Object.freeze(info.requested);
  const handler = window.webkit && window.webkit.messageHandlers && window.webkit.messageHandlers.cirrus;
  const post = (message) => { if (handler) handler.postMessage(JSON.stringify(message)); };

  // Page visibility follows the app's lifecycle: hidden while the app is in the background.
  let state = 'active';
  const proto = Document.prototype;
  Object.defineProperty(proto, 'visibilityState', {
    configurable: true, enumerable: true, get() { return state === 'active' ? 'visible' : 'hidden'; },
  });
  Object.defineProperty(proto, 'hidden', {
    configurable: true, enumerable: true, get() { return state !== 'active'; },
  });

  const pending = new Map();
  let nextRequest = 1;

  class Cirrus extends EventTarget {
    get app() { return info; }
    /** 'active' (foreground) or 'paused' (background). */
    get state() { return state; }
    /** Ends the app. */
    close() { post({ type: 'close' }); }
    /** Asks for a permission the manifest lists; resolves to 'granted' or 'denied'. */
    requestPermission(name) {
      return new Promise((resolve) => {
        const id = nextRequest++;
        pending.set(id, resolve);
        post({ type: 'request-permission', id, name: String(name) });
      });
    }
  }
  const cirrus = new Cirrus();
  Object.defineProperty(Navigator.prototype, 'cirrus', {
    configurable: false, enumerable: true, get() { return cirrus; },
  });

  Object.defineProperty(window, '__cirrusHost', {
    configurable: false, writable: false, enumerable: false,
    value: Object.freeze({
      lifecycle(next) {
        if (next !== 'active' && next !== 'paused') return;
        if (next === state) return;
        state = next;
        document.dispatchEvent(new Event('visibilitychange'));
        cirrus.dispatchEvent(new Event(next === 'paused' ? 'pause' : 'resume'));
      },
      reply(id, value) {
        const resolve = pending.get(id);
        if (resolve) { pending.delete(id); resolve(value); }
      },
    }),
  });
})();
