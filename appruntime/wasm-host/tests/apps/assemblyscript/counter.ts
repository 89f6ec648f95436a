// Counter (AssemblyScript): counts taps, keeps the count in its data directory across restarts and
// draws it as text ("TAPS" over the number), white on purple.
import {
  Canvas, POINTER_DOWN, log, readText, requestFrame, writeText,
} from "./cirrus";

// The allocator the WASI adapter and the host use (every app re-exports it).
export { cabi_realloc } from "./cirrus";

const BACKGROUND: u32 = 0x4c1d95ff;
const WHITE: u32 = 0xffffffff;

let canvas: Canvas | null = null;
let count: u32 = 0;

function save(): void {
  if (!writeText("count.txt", count.toString() + "\n")) log("counter: cannot save");
}

function draw(): void {
  if (canvas == null) return;
  const c = canvas!;
  c.fill(BACKGROUND);
  const big = max<i32>(2, <i32>c.width / 40);
  const label = "TAPS";
  c.text((<i32>c.width - Canvas.textWidth(label, big)) / 2, <i32>c.height / 2 - 12 * big, big, label, WHITE);
  const number = count.toString();
  const huge = big * 2;
  c.text((<i32>c.width - Canvas.textWidth(number, huge)) / 2, <i32>c.height / 2, huge, number, WHITE);
  c.present();
}

export function cirrus_app_lifecycle_create(): void {
  const saved = readText("count.txt");
  count = saved !== null ? <u32>I32.parseInt(saved.trim()) : 0;
  log("counter: created with count " + count.toString());
}

export function cirrus_app_lifecycle_resume(): void {
  requestFrame();
}

export function cirrus_app_lifecycle_pause(): void {
  save();
}

export function cirrus_app_lifecycle_destroy(): void {
  save();
  log("counter: destroyed at " + count.toString());
}

export function cirrus_app_events_pointer(phase: i32, x: f64, y: f64): void {
  if (phase == POINTER_DOWN) {
    count++;
    save();
    requestFrame();
  }
}

export function cirrus_app_events_key(code: u32, pressed: bool): void {}

export function cirrus_app_events_resize(width: u32, height: u32): void {
  if (canvas != null) canvas!.free();
  canvas = new Canvas(width, height);
  requestFrame();
}

export function cirrus_app_events_frame(timeMs: u64): void {
  draw();
}
