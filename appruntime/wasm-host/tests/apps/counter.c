/* Counter: counts taps, keeps the count in its data dir across restarts, draws the count as
 * seven-segment digits (white on blue). */
#include <stdio.h>
#include <stdlib.h>
#include "cirrus_app.h"

static uint32_t W = 0, H = 0, count = 0;
static uint8_t *px = 0;

static void load(void) {
    FILE *f = fopen("count.txt", "r");
    if (f) { if (fscanf(f, "%u", &count) != 1) count = 0; fclose(f); }
}
static void save(void) {
    FILE *f = fopen("count.txt.tmp", "w");
    if (!f) { fprintf(stderr, "counter: cannot save\n"); return; }
    fprintf(f, "%u\n", count); fclose(f); rename("count.txt.tmp", "count.txt");
}
static void rect(int x0, int y0, int w, int h, uint32_t rgba) {
    for (int y = y0; y < y0 + h; y++) for (int x = x0; x < x0 + w; x++) {
        if (x < 0 || y < 0 || (uint32_t)x >= W || (uint32_t)y >= H) continue;
        uint8_t *p = px + ((size_t)y * W + x) * 4;
        p[0] = rgba >> 24; p[1] = rgba >> 16; p[2] = rgba >> 8; p[3] = rgba;
    }
}
/* segments a..g */
static const uint8_t SEG[10] = {0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f};
static void digit(int x, int y, int s, int d) {
    uint8_t m = SEG[d]; int t = s / 5 + 1;
    if (m & 1) rect(x, y, s, t, 0xffffffff);
    if (m & 2) rect(x + s - t, y, t, s, 0xffffffff);
    if (m & 4) rect(x + s - t, y + s, t, s, 0xffffffff);
    if (m & 8) rect(x, y + 2 * s - t, s, t, 0xffffffff);
    if (m & 16) rect(x, y + s, t, s, 0xffffffff);
    if (m & 32) rect(x, y, t, s, 0xffffffff);
    if (m & 64) rect(x, y + s - t / 2, s, t, 0xffffffff);
}
static void draw(void) {
    if (!px) return;
    rect(0, 0, W, H, 0x1e3a8aff);
    char buf[16]; int n = snprintf(buf, sizeof buf, "%u", count);
    int s = W / 8; int x = (W - n * (s + s / 2)) / 2, y = H / 2 - s;
    for (int i = 0; i < n; i++) digit(x + i * (s + s / 2), y, s, buf[i] - '0');
    cirrus_surface_present(W, H, px, (size_t)W * H * 4);
}

CIRRUS_ON_CREATE { load(); printf("counter: created with count %u\n", count); fflush(stdout); }
CIRRUS_ON_RESUME { cirrus_surface_request_frame(); }
CIRRUS_ON_PAUSE { save(); }
CIRRUS_ON_DESTROY { save(); printf("counter: destroyed at %u\n", count); fflush(stdout); }
CIRRUS_ON_POINTER { if (phase == CIRRUS_POINTER_DOWN) { count++; save(); cirrus_surface_request_frame(); } }
CIRRUS_ON_KEY { (void)code; (void)pressed; }
CIRRUS_ON_RESIZE {
    free(px); W = width; H = height; px = malloc((size_t)W * H * 4);
    cirrus_surface_request_frame();
}
CIRRUS_ON_FRAME { (void)time_ms; draw(); }
