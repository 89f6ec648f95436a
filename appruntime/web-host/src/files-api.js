// navigator.cirrus.files: the user's files, for apps holding the `user-files` permission.
// Injected by cirrus-web-host after the Cirrus API (docs/web-apps.md, types in docs/web-apps.d.ts).
(() => {
  'use strict';
  const handler = window.webkit && window.webkit.messageHandlers && window.webkit.messageHandlers.cirrusFiles;
  if (!handler || !navigator.cirrus) return;
  const pending = new Map();
  let next = 1;
  const call = (message) => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    handler.postMessage(JSON.stringify(Object.assign({ id }, message)));
  });
  const text = (v) => String(v);
  const files = Object.freeze({
    /** Entries of a directory ('' is the root): [{name, kind: 'file'|'directory', size, modified}]. */
    list(dir = '') { return call({ op: 'list', path: text(dir) }); },
    /** The UTF-8 text of a file. */
    read(path) { return call({ op: 'read', path: text(path) }); },
    /** Writes (replaces) a file, creating missing directories. */
    write(path, data) { return call({ op: 'write', path: text(path), text: text(data) }); },
    /** Renames a file or directory; fails with AlreadyExistsError if `to` exists. */
    rename(from, to) { return call({ op: 'rename', path: text(from), to: text(to) }); },
    /** Removes a file, or an empty directory. */
    remove(path) { return call({ op: 'remove', path: text(path) }); },
  });
  Object.defineProperty(navigator.cirrus, 'files', {
    configurable: false, enumerable: true, writable: false, value: files,
  });
  Object.defineProperty(window, '__cirrusFiles', {
    configurable: false, writable: false, enumerable: false,
    value: Object.freeze({
      reply(id, ok, value) {
        const p = pending.get(id);
        if (!p) return;
        pending.delete(id);
        if (ok) { p.resolve(value); return; }
        const error = new Error(value && value.message ? value.message : 'failed');
        error.name = value && value.name ? value.name : 'Error';
        p.reject(error);
      },
    }),
  });
})();
