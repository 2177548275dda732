/* test_upload.c -- upload.h: names, ids, ranges, inline types and the
 * Content-Disposition header (docs/files.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "palaver/upload.h"
#include "palaver/utf8.h"

static const char *name(const char *in)
{
    static char out[PV_FILE_NAME_MAX + 1];
    pv_file_name(in, strlen(in), out);
    return out;
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(name("beach.jpg"), "beach.jpg");
    /* Never a path: the last component only, either separator. */
    assert_string_equal(name("../../etc/passwd"), "passwd");
    assert_string_equal(name("C:\\Users\\ann\\report.pdf"), "report.pdf");
    assert_string_equal(name("dir/"), "file");
    /* No hidden files, no "..", no trailing dots or spaces. */
    assert_string_equal(name(".."), "file");
    assert_string_equal(name(".bashrc"), "bashrc");
    assert_string_equal(name("notes.txt. . "), "notes.txt");
    /* Bidi and zero-width characters removed: the name shows what it is. */
    assert_string_equal(name("evil\xe2\x80\xaegpj.exe"), "evilgpj.exe");
    assert_string_equal(name("a\xe2\x80\x8b"
                             "b\xef\xbb\xbf.png"),
                        "ab.png");
    /* Controls and invalid UTF-8 gone, white space folded, reserved
     * characters of other systems replaced. */
    assert_string_equal(name("a\r\nb\x01\xff\xc0\xaf.txt"), "a b.txt");
    assert_string_equal(name("  two   words\t.txt"), "two words .txt");
    assert_string_equal(name("what?<x>:\"|*.txt"), "what__x_____.txt");
    assert_string_equal(name(""), "file");
    assert_string_equal(name("\xe2\x80\xae"), "file");
    /* Non-Latin names are kept whole. */
    assert_string_equal(name("\xe5\x86\x99\xe7\x9c\x9f.jpg"), "\xe5\x86\x99\xe7\x9c\x9f.jpg");
}

static void test_long_names_keep_extension(void **state)
{
    (void)state;
    char in[600], out[PV_FILE_NAME_MAX + 1];
    memset(in, 'x', 400);
    memcpy(in + 400, ".jpeg", 6);
    pv_file_name(in, strlen(in), out);
    assert_int_equal(strlen(out), PV_FILE_NAME_MAX);
    assert_string_equal(out + PV_FILE_NAME_MAX - 5, ".jpeg");
    /* Cut on a character boundary: 3-byte characters. */
    size_t n = 0;
    for (int i = 0; i < 100; i++, n += 3)
        memcpy(in + n, "\xe5\x86\x99", 3);
    memcpy(in + n, ".png", 5);
    pv_file_name(in, strlen(in), out);
    assert_true(strlen(out) <= PV_FILE_NAME_MAX);
    assert_true(pv_utf8_valid(out, strlen(out)));
    assert_string_equal(out + strlen(out) - 4, ".png");
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(pv_file_id_ok("abcdefghijklmnopqrstu_", 22));
    assert_true(pv_file_id_ok("ABCDEFGHIJKLMNOPQRST-9", 22));
    assert_false(pv_file_id_ok("abcdefghijklmnopqrstu", 21));
    assert_false(pv_file_id_ok("abcdefghijklmnopqrstuvw", 23));
    assert_false(pv_file_id_ok("../../../../etc/passwd", 22));
    assert_false(pv_file_id_ok("abcdefghijklmnopqrst%2", 22));
    assert_false(pv_file_id_ok(NULL, 0));
}

static void test_ranges(void **state)
{
    (void)state;
    uint64_t a = 99, b = 99;
    assert_int_equal(pv_file_range(NULL, 100, &a, &b), 0);
    assert_int_equal(pv_file_range("bytes=0-9", 100, &a, &b), 1);
    assert_true(a == 0 && b == 9);
    assert_int_equal(pv_file_range("bytes=90-", 100, &a, &b), 1);
    assert_true(a == 90 && b == 99);
    assert_int_equal(pv_file_range("bytes=50-500", 100, &a, &b), 1);
    assert_true(a == 50 && b == 99);
    assert_int_equal(pv_file_range("bytes=-10", 100, &a, &b), 1);
    assert_true(a == 90 && b == 99);
    assert_int_equal(pv_file_range("bytes=-1000", 100, &a, &b), 1);
    assert_true(a == 0 && b == 99);
    /* Unsatisfiable: 416. */
    assert_int_equal(pv_file_range("bytes=100-", 100, &a, &b), -1);
    assert_int_equal(pv_file_range("bytes=-0", 100, &a, &b), -1);
    assert_int_equal(pv_file_range("bytes=0-0", 0, &a, &b), -1);
    /* Ignored: the whole file. */
    assert_int_equal(pv_file_range("bytes=0-1,5-6", 100, &a, &b), 0);
    assert_int_equal(pv_file_range("items=0-1", 100, &a, &b), 0);
    assert_int_equal(pv_file_range("bytes=9-1", 100, &a, &b), 0);
    assert_int_equal(pv_file_range("bytes=x-1", 100, &a, &b), 0);
    assert_int_equal(pv_file_range("bytes=1-2junk", 100, &a, &b), 0);
    assert_int_equal(pv_file_range("bytes=99999999999999999999-", 100, &a, &b), 0);
}

static void test_inline_types(void **state)
{
    (void)state;
    assert_true(pv_file_inline("image/png"));
    assert_true(pv_file_inline("image/jpeg"));
    assert_true(pv_file_inline("video/mp4"));
    assert_false(pv_file_inline("image/svg+xml")); /* script inside */
    assert_false(pv_file_inline("text/html"));
    assert_false(pv_file_inline("application/pdf"));
    assert_false(pv_file_inline("application/octet-stream"));
    assert_false(pv_file_inline("image/png; charset=x"));
    assert_false(pv_file_inline(NULL));
}

static void test_disposition(void **state)
{
    (void)state;
    char d[PV_FILE_DISPOSITION_MAX];
    pv_file_disposition("beach.jpg", true, d, sizeof(d));
    assert_string_equal(d, "inline; filename=\"beach.jpg\"; filename*=UTF-8''beach.jpg");
    pv_file_disposition("a \"b\"%\xe5\x86\x99.pdf", false, d, sizeof(d));
    assert_string_equal(d, "attachment; filename=\"a _b___.pdf\"; "
                           "filename*=UTF-8''a%20%22b%22%25%E5%86%99.pdf");
}

/* Sizes from libmagic's descriptions, as `file` prints them on Debian 12. */
static void test_dimensions(void **state)
{
    (void)state;
    static const struct {
        const char *desc;
        long w, h;
    } cases[] = {
        {"PNG image data, 640 x 480, 8-bit/color RGBA, non-interlaced", 640, 480},
        {"JPEG image data, JFIF standard 1.01, aspect ratio, density 1x1, segment length 16, "
         "baseline, precision 8, 320x240, components 3",
         320, 240},
        {"JPEG image data, JFIF standard 1.01, resolution (DPI), density 72x72, segment length "
         "16, progressive, precision 8, 1600x1200, components 3",
         1600, 1200},
        {"RIFF (little-endian) data, Web/P image, VP8 encoding, 1280x960, Scaling: [none]x[none], "
         "YUV color, decoders should clamp",
         1280, 960},
        {"GIF image data, version 89a, 32 x 16", 32, 16},
        {"RIFF (little-endian) data, Web/P image", 0, 0},
        {"JPEG image data, JFIF standard 1.01, aspect ratio, density 1x1, segment length 16", 0, 0},
        {"PNG image data, 0 x 480", 0, 0},
        {"PNG image data, 640 x 99999999", 0, 0},
        {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long w = -1, h = -1;
        pv_file_dimensions(cases[i].desc, &w, &h);
        assert_int_equal(w, cases[i].w);
        assert_int_equal(h, cases[i].h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),        cmocka_unit_test(test_long_names_keep_extension),
        cmocka_unit_test(test_ids),          cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_inline_types), cmocka_unit_test(test_disposition),
        cmocka_unit_test(test_dimensions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
