/* Sandbox probe: tries to escape its data dir and reports each attempt on stderr; behaviour picked
 * by the file `mode` in its data dir: "files", "spin" (loops forever on a tap), "bomb" (allocates
 * until refused). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cirrus_app.h"

static char mode[16];
static uint8_t frame[4 * 4 * 4];

static void probe(const char *what, const char *path) {
    FILE *f = fopen(path, "r");
    char buf[64] = {0};
    if (f) { size_t n = fread(buf, 1, sizeof buf - 1, f); buf[n] = 0; fclose(f); fprintf(stderr, "probe %s: READ %s\n", what, buf); }
    else fprintf(stderr, "probe %s: denied\n", what);
}

CIRRUS_ON_CREATE {
    FILE *m = fopen("mode", "r");
    if (m) { if (!fgets(mode, sizeof mode, m)) mode[0] = 0; fclose(m); }
    mode[strcspn(mode, "\n")] = 0;
    if (!strcmp(mode, "files")) {
        probe("own", "own.txt");
        probe("passwd", "/etc/passwd");
        probe("dotdot", "../other.app/secret.txt");
        probe("abs-dotdot", "/../other.app/secret.txt");
        probe("package", "/package/asset.txt");
        FILE *w = fopen("/package/asset.txt", "w");
        fprintf(stderr, "probe package-write: %s\n", w ? "WROTE" : "denied");
        if (w) fclose(w);
    } else if (!strcmp(mode, "bomb")) {
        /* Kept in a global so the compiler cannot elide the allocations. */
        static char *volatile kept[4096];
        size_t mib = 0;
        for (;;) { char *p = malloc(1 << 20); if (!p) break; memset(p, 1, 1 << 20); kept[mib % 4096] = p; mib++; }
        fprintf(stderr, "bomb: refused after %zu MiB\n", mib);
    }
    fflush(stderr);
}
CIRRUS_ON_RESUME {}
CIRRUS_ON_PAUSE {}
CIRRUS_ON_DESTROY {}
CIRRUS_ON_POINTER {
    (void)x; (void)y;
    if (phase == CIRRUS_POINTER_DOWN && !strcmp(mode, "spin")) { volatile unsigned long i = 0; for (;;) i++; }
}
CIRRUS_ON_KEY { (void)code; (void)pressed; }
CIRRUS_ON_RESIZE { (void)width; (void)height; cirrus_surface_request_frame(); }
CIRRUS_ON_FRAME { (void)time_ms; memset(frame, 0xff, sizeof frame); cirrus_surface_present(4, 4, frame, sizeof frame); }
