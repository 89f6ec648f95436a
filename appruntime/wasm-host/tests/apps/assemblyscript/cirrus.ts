// cirrus.ts: the cirrus:app world (docs/wit/cirrus-app.wit) for AssemblyScript apps, with the few
// WASI calls an app needs (log, read and write small files in its data directory) and a canvas
// with a 5x7 bitmap font. `cirrus app build` compiles assembly/index.ts with asc and gives the
// exports `cirrus_app_<interface>_<function>` their canonical names (`cirrus:app/events@0.1.0#frame`).
// Export from index.ts: cirrus_app_lifecycle_{create,resume,pause,destroy},
// cirrus_app_events_{pointer,key,resize,frame}, and re-export `cabi_realloc` from here.

// ---- The surface (imported) ----
@external("cirrus:app/surface@0.1.0", "width")
export declare function surfaceWidth(): u32;
@external("cirrus:app/surface@0.1.0", "height")
export declare function surfaceHeight(): u32;
@external("cirrus:app/surface@0.1.0", "present")
declare function surfacePresent(width: u32, height: u32, pixels: usize, len: usize): void;
@external("cirrus:app/surface@0.1.0", "request-frame")
export declare function requestFrame(): void;

/** `events.pointer`'s phase. */
export const POINTER_DOWN: i32 = 0;
export const POINTER_MOVE: i32 = 1;
export const POINTER_UP: i32 = 2;
export const POINTER_CANCEL: i32 = 3;

/** The canonical ABI's allocator: the WASI adapter and the host allocate in the app's memory
 * through it (unmanaged heap memory). Re-export it from index.ts. */
export function cabi_realloc(ptr: usize, oldSize: usize, align: usize, newSize: usize): usize {
  if (ptr == 0) return heap.alloc(newSize); // 16-byte aligned
  return heap.realloc(ptr, newSize);
}

// ---- WASI preview 1 (componentized with the adapter) ----
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, iovsLen: u32, written: usize): u32;
@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: u32, iovs: usize, iovsLen: u32, read: usize): u32;
@external("wasi_snapshot_preview1", "fd_close")
declare function fd_close(fd: u32): u32;
@external("wasi_snapshot_preview1", "fd_prestat_get")
declare function fd_prestat_get(fd: u32, prestat: usize): u32;
@external("wasi_snapshot_preview1", "fd_prestat_dir_name")
declare function fd_prestat_dir_name(fd: u32, path: usize, len: u32): u32;
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(dirfd: u32, dirflags: u32, path: usize, pathLen: u32, oflags: u32, rightsBase: u64, rightsInheriting: u64, fdflags: u32, fd: usize): u32;
@external("wasi_snapshot_preview1", "path_rename")
declare function path_rename(fd: u32, oldPath: usize, oldLen: u32, newFd: u32, newPath: usize, newLen: u32): u32;

const scratch = memory.data(64);

/** Writes a line to the app's log (stderr). */
export function log(message: string): void {
  const bytes = String.UTF8.encode(message + "\n");
  store<u32>(scratch, changetype<usize>(bytes));
  store<u32>(scratch + 4, <u32>bytes.byteLength);
  fd_write(2, scratch, 1, scratch + 8);
}

/** The preopened data directory (`/`), or -1. */
function dataDir(): i32 {
  for (let fd: u32 = 3; fd < 16; fd++) {
    if (fd_prestat_get(fd, scratch) != 0) break;
    if (load<u8>(scratch) != 0 || load<u32>(scratch + 4) != 1) continue;
    if (fd_prestat_dir_name(fd, scratch + 16, 1) == 0 && load<u8>(scratch + 16) == 0x2f) return <i32>fd;
  }
  return -1;
}

const ALL_RIGHTS: u64 = 0x1fffffff;

function open(name: string, oflags: u32): i32 {
  const dir = dataDir();
  if (dir < 0) return -1;
  const path = String.UTF8.encode(name);
  const err = path_open(<u32>dir, 0, changetype<usize>(path), <u32>path.byteLength, oflags, ALL_RIGHTS, ALL_RIGHTS, 0, scratch);
  return err == 0 ? <i32>load<u32>(scratch) : -1;
}

/** Reads a small text file from the app's data directory; null if it does not exist. */
export function readText(name: string): string | null {
  const fd = open(name, 0);
  if (fd < 0) return null;
  const buf = new ArrayBuffer(4096);
  store<u32>(scratch + 32, changetype<usize>(buf));
  store<u32>(scratch + 36, 4096);
  const err = fd_read(<u32>fd, scratch + 32, 1, scratch + 40);
  fd_close(<u32>fd);
  if (err != 0) return null;
  return String.UTF8.decode(buf.slice(0, <i32>load<u32>(scratch + 40)));
}

/** Replaces a file in the app's data directory (written beside it, then renamed over it). */
export function writeText(name: string, text: string): bool {
  const tmp = name + ".tmp";
  const fd = open(tmp, 1 | 8); // O_CREAT | O_TRUNC
  if (fd < 0) return false;
  const bytes = String.UTF8.encode(text);
  store<u32>(scratch + 32, changetype<usize>(bytes));
  store<u32>(scratch + 36, <u32>bytes.byteLength);
  const err = fd_write(<u32>fd, scratch + 32, 1, scratch + 40);
  fd_close(<u32>fd);
  if (err != 0) return false;
  const dir = <u32>dataDir();
  const from = String.UTF8.encode(tmp);
  const to = String.UTF8.encode(name);
  return path_rename(dir, changetype<usize>(from), <u32>from.byteLength, dir, changetype<usize>(to), <u32>to.byteLength) == 0;
}

/** What `abort` (a failed assertion, an out-of-bounds access) does: log, then trap. */
export function cirrusAbort(message: string | null, file: string | null, line: u32, column: u32): void {
  log("abort: " + (message !== null ? message : "") + " at " + (file !== null ? file : "") + ":" + line.toString() + ":" + column.toString());
  unreachable();
}

// ---- Drawing ----
// 5x7 glyphs, one byte a row (bit 4 = leftmost): 0-9 then A-Z.
const FONT: StaticArray<u8> = [
  0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e, 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e,
  0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f, 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e,
  0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02, 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e,
  0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e, 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08,
  0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e, 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c,
  0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e,
  0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e, 0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c,
  0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f, 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10,
  0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f, 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11,
  0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c,
  0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f,
  0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11,
  0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10,
  0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d, 0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11,
  0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e, 0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
  0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04,
  0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a, 0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11,
  0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f,
];

/** An RGBA frame buffer the size of the surface. Colours are 0xRRGGBBAA. */
export class Canvas {
  width: u32;
  height: u32;
  pixels: usize;

  constructor(width: u32, height: u32) {
    this.width = width;
    this.height = height;
    this.pixels = heap.alloc(<usize>width * height * 4);
  }

  /** Frees the pixels (call before dropping the canvas, e.g. on resize). */
  free(): void {
    heap.free(this.pixels);
    this.pixels = 0;
  }

  rect(x: i32, y: i32, w: i32, h: i32, rgba: u32): void {
    const x0 = max(x, 0), y0 = max(y, 0);
    const x1 = min(x + w, <i32>this.width), y1 = min(y + h, <i32>this.height);
    const px = bswap<u32>(rgba); // memory order R, G, B, A
    for (let yy = y0; yy < y1; yy++) {
      let p = this.pixels + (<usize>yy * this.width + <usize>x0) * 4;
      for (let xx = x0; xx < x1; xx++) {
        store<u32>(p, px);
        p += 4;
      }
    }
  }

  fill(rgba: u32): void {
    this.rect(0, 0, <i32>this.width, <i32>this.height, rgba);
  }

  /** Width in pixels of `text` drawn at `scale` (each glyph is 6 cells wide with its gap). */
  static textWidth(text: string, scale: i32): i32 {
    return text.length * 6 * scale - scale;
  }

  /** Draws `text` (digits, A-Z, space; other characters as spaces) with its top-left at x, y. */
  text(x: i32, y: i32, scale: i32, text: string, rgba: u32): void {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      let glyph = -1;
      if (c >= 0x30 && c <= 0x39) glyph = c - 0x30;
      else if (c >= 0x41 && c <= 0x5a) glyph = c - 0x41 + 10;
      else if (c >= 0x61 && c <= 0x7a) glyph = c - 0x61 + 10;
      if (glyph >= 0) {
        for (let row = 0; row < 7; row++) {
          const bits = <i32>FONT[glyph * 7 + row];
          for (let col = 0; col < 5; col++) {
            if (bits & (0x10 >> col)) this.rect(x + col * scale, y + row * scale, scale, scale, rgba);
          }
        }
      }
      x += 6 * scale;
    }
  }

  /** Shows the canvas. */
  present(): void {
    surfacePresent(this.width, this.height, this.pixels, <usize>this.width * this.height * 4);
  }
}
