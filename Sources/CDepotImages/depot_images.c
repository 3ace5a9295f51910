#include "depot_images.h"
#include <stdlib.h>
#include <string.h>

#ifdef DEPOT_VIPS
#include <vips/vips.h>

int depot_images_available(void) { return 1; }

static volatile gint warnings = 0;

static void count_warning(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data) {
    (void) domain; (void) level; (void) message; (void) data;
    g_atomic_int_inc(&warnings);
}

int depot_images_warnings(void) { return g_atomic_int_get(&warnings); }

int depot_images_start(void) {
    if (VIPS_INIT("depot")) return -1;
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_block_untrusted_set(TRUE);
    /* Only the four web formats: never PDF, SVG, TIFF, ImageMagick, whatever the bytes say. */
    vips_operation_block_set("VipsForeignLoad", TRUE);
    vips_operation_block_set("VipsForeignLoadJpegBuffer", FALSE);
    vips_operation_block_set("VipsForeignLoadPngBuffer", FALSE);
    vips_operation_block_set("VipsForeignLoadWebpBuffer", FALSE);
    vips_operation_block_set("VipsForeignLoadNsgifBuffer", FALSE);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO, count_warning, NULL);
    return 0;
}

int depot_images_probe(const void *buf, size_t len, depot_image_header *out) {
    memset(out, 0, sizeof(*out));
    vips_error_clear();
    const char *loader = vips_foreign_find_load_buffer(buf, len);
    if (!loader) return -1;
    VipsImage *img = vips_image_new_from_buffer(buf, len, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (!img) return -1;
    out->width = vips_image_get_width(img);
    int pages = vips_image_get_n_pages(img);
    int page_height = vips_image_get_page_height(img);
    out->pages = pages > 0 ? pages : 1;
    out->height = page_height > 0 ? page_height : vips_image_get_height(img);
    g_strlcpy(out->loader, loader, sizeof(out->loader));
    g_object_unref(img);
    return 0;
}

static int save(VipsImage *in, int format, int quality, void **out, size_t *out_len) {
    VipsImage *img = in;
    VipsImage *flat = NULL;
    int q = quality > 0 && quality <= 100 ? quality : 80;
    if (format == DEPOT_FORMAT_JPEG && vips_image_hasalpha(img)) {
        /* JPEG has no alpha: onto white rather than dropping the band. */
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int rc = vips_flatten(img, &flat, "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (rc) return -1;
        img = flat;
    }
    int rc;
    switch (format) {
    case DEPOT_FORMAT_JPEG: rc = vips_jpegsave_buffer(img, out, out_len, "Q", q, "strip", TRUE, NULL); break;
    case DEPOT_FORMAT_PNG: rc = vips_pngsave_buffer(img, out, out_len, "compression", 6, "strip", TRUE, NULL); break;
    case DEPOT_FORMAT_WEBP: rc = vips_webpsave_buffer(img, out, out_len, "Q", q, "strip", TRUE, NULL); break;
    case DEPOT_FORMAT_GIF: rc = vips_gifsave_buffer(img, out, out_len, "strip", TRUE, NULL); break;
    default: vips_error("depot", "unknown output format %d", format); rc = -1;
    }
    if (flat) g_object_unref(flat);
    return rc;
}

int depot_images_render(const void *buf, size_t len, int width, int height, int fit, int format, int quality,
                        long max_pixels, depot_image_header *header, void **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (width < 0 || height < 0 || width > 10000 || height > 10000) {
        vips_error("depot", "the size must be 1 to 10000 pixels a side");
        return -1;
    }
    if (depot_images_probe(buf, len, header)) return -1;
    if ((long) header->width * (long) header->height > max_pixels) {
        vips_error("depot", "the image is %d x %d pixels, more than the %ld allowed", header->width, header->height, max_pixels);
        return -2;
    }
    /* A side left 0 follows the image's aspect ratio (both 0: the image's own size). */
    if (header->width < 1 || header->height < 1) {
        vips_error("depot", "the image has no pixels");
        return -1;
    }
    if (width == 0 && height == 0) {
        width = header->width;
        height = header->height;
    } else if (width == 0) {
        width = (int) (((long) height * header->width + header->height / 2) / header->height);
    } else if (height == 0) {
        height = (int) (((long) width * header->height + header->width / 2) / header->width);
    }
    if (width < 1) width = 1;
    if (height < 1) height = 1;
    if (width > 10000) width = 10000;
    if (height > 10000) height = 10000;
    VipsImage *thumb = NULL;
    /* The first frame only (an animation becomes a still); fail_on must go in the load options:
     * libvips 8.14 ignores thumbnail's own fail_on. */
    int rc = vips_thumbnail_buffer((void *) buf, len, &thumb, width,
        "height", height,
        "crop", fit == DEPOT_FIT_COVER ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE,
        "size", fit == DEPOT_FIT_FILL ? VIPS_SIZE_FORCE : VIPS_SIZE_BOTH,
        "option_string", "fail_on=error",
        NULL);
    if (rc) return -1;
    rc = save(thumb, format, quality, out, out_len);
    g_object_unref(thumb);
    return rc;
}

char *depot_images_error(void) {
    char *copy = vips_error_buffer_copy();
    return copy;
}

void depot_images_free(void *p) { g_free(p); }

#else

int depot_images_available(void) { return 0; }
int depot_images_start(void) { return -1; }
int depot_images_warnings(void) { return 0; }
int depot_images_probe(const void *buf, size_t len, depot_image_header *out) {
    (void) buf; (void) len;
    memset(out, 0, sizeof(*out));
    return -1;
}
int depot_images_render(const void *buf, size_t len, int width, int height, int fit, int format, int quality,
                        long max_pixels, depot_image_header *header, void **out, size_t *out_len) {
    (void) buf; (void) len; (void) width; (void) height; (void) fit; (void) format; (void) quality; (void) max_pixels;
    memset(header, 0, sizeof(*header));
    *out = NULL;
    *out_len = 0;
    return -1;
}
char *depot_images_error(void) {
    const char *m = "image processing is off: Depot was built without libvips (apt-get install libvips-dev, then rebuild)";
    char *copy = malloc(strlen(m) + 1);
    if (copy) strcpy(copy, m);
    return copy;
}
void depot_images_free(void *p) { free(p); }

#endif
