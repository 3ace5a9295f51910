#ifndef DEPOT_IMAGES_H
#define DEPOT_IMAGES_H

#include <stddef.h>

/* Image work for Depot, one call per rendition: bytes in, bytes out. No libvips type crosses
 * into Swift (this header does not include vips.h). Built without libvips (no DEPOT_VIPS),
 * every call fails with "image processing is off". */

/* What the header of an image says, read without decoding its pixels. */
typedef struct {
    int width;
    int height;      /* of one frame */
    int pages;       /* frames (1 for a still image) */
    char loader[64]; /* e.g. "pngload_buffer" */
} depot_image_header;

enum { DEPOT_FIT_COVER = 0, DEPOT_FIT_CONTAIN = 1, DEPOT_FIT_FILL = 2 };
enum { DEPOT_FORMAT_JPEG = 0, DEPOT_FORMAT_PNG = 1, DEPOT_FORMAT_WEBP = 2, DEPOT_FORMAT_GIF = 3 };

/* 1 when built with libvips. */
int depot_images_available(void);
/* Once per process: starts libvips with one thread per call, no operation cache, only the
 * PNG, JPEG, WebP and GIF loaders, and its warnings counted instead of printed. 0 on success. */
int depot_images_start(void);
/* Reads the header. 0 on success. */
int depot_images_probe(const void *buf, size_t len, depot_image_header *out);
/* Renders the first frame of `buf` to width x height (cover: cropped to fill, centred; contain:
 * inside the box, aspect kept; fill: stretched; a side 0 follows the image's aspect ratio, both 0
 * keep its size) in `format` at `quality` (1-100, JPEG and WebP),
 * after checking the header against max_pixels (width x height of a frame). Decoding stops at the
 * first error (fail_on=error). On success *out is a buffer to release with depot_images_free.
 * Returns 0; -1 on a decoding error; -2 when the image is larger than max_pixels. */
int depot_images_render(const void *buf, size_t len, int width, int height, int fit, int format, int quality,
                        long max_pixels, depot_image_header *header, void **out, size_t *out_len);
/* The last error of this thread, as a new string (release with depot_images_free), and cleared. */
char *depot_images_error(void);
void depot_images_free(void *p);
/* Warnings libvips raised so far (corrupt input prints one per scan line otherwise). */
int depot_images_warnings(void);

#endif
