/* cirrus_app.h: the cirrus:app world (docs/wit/cirrus-app.wit) for C apps built with
 * `clang --target=wasm32-wasi -mexec-model=reactor`. Define the CIRRUS_EXPORT functions; call the
 * cirrus_surface_* imports. Strings are UTF-8. */
#ifndef CIRRUS_APP_H
#define CIRRUS_APP_H
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

#define CIRRUS_IMPORT(iface, name) __attribute__((import_module("cirrus:app/" iface "@0.1.0"), import_name(name)))
#define CIRRUS_EXPORT(iface, name) __attribute__((export_name("cirrus:app/" iface "@0.1.0#" name)))

CIRRUS_IMPORT("surface", "width") uint32_t cirrus_surface_width(void);
CIRRUS_IMPORT("surface", "height") uint32_t cirrus_surface_height(void);
/* pixels: width*height*4 bytes, RGBA premultiplied, rows top to bottom. */
CIRRUS_IMPORT("surface", "present") void cirrus_surface_present(uint32_t width, uint32_t height, const uint8_t *pixels, size_t len);
CIRRUS_IMPORT("surface", "request-frame") void cirrus_surface_request_frame(void);

enum cirrus_pointer_phase { CIRRUS_POINTER_DOWN = 0, CIRRUS_POINTER_MOVE = 1, CIRRUS_POINTER_UP = 2, CIRRUS_POINTER_CANCEL = 3 };

/* Exports every app defines (the host calls them). */
#define CIRRUS_ON_CREATE CIRRUS_EXPORT("lifecycle", "create") void cirrus_on_create(void)
#define CIRRUS_ON_RESUME CIRRUS_EXPORT("lifecycle", "resume") void cirrus_on_resume(void)
#define CIRRUS_ON_PAUSE CIRRUS_EXPORT("lifecycle", "pause") void cirrus_on_pause(void)
#define CIRRUS_ON_DESTROY CIRRUS_EXPORT("lifecycle", "destroy") void cirrus_on_destroy(void)
#define CIRRUS_ON_POINTER CIRRUS_EXPORT("events", "pointer") void cirrus_on_pointer(int32_t phase, double x, double y)
#define CIRRUS_ON_KEY CIRRUS_EXPORT("events", "key") void cirrus_on_key(uint32_t code, int32_t pressed)
#define CIRRUS_ON_RESIZE CIRRUS_EXPORT("events", "resize") void cirrus_on_resize(uint32_t width, uint32_t height)
#define CIRRUS_ON_FRAME CIRRUS_EXPORT("events", "frame") void cirrus_on_frame(uint64_t time_ms)

/* The canonical ABI allocator: lets the WASI adapter and the host allocate through malloc (without
 * it the adapter grows memory behind malloc's back). */
__attribute__((weak, export_name("cabi_realloc"))) void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    (void)align; /* malloc aligns to 16 */
    return realloc(ptr, new_size);
}

#endif
