/* sha256 against the FIPS 180-2 / NIST example vectors, incremental updates, and files. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "sha256.h"

static void hex_of(const void *data, size_t len, char hex[65]) {
    sha256_ctx c;
    uint8_t d[32];
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_final(&c, d);
    sha256_hex(d, hex);
}

TEST(fips_vectors) {
    char hex[65];
    hex_of("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    hex_of("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *four =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
        "pqklmnopqrlmnopqrsmnopqrstnopqrstu";
    hex_of(four, strlen(four), hex);
    CHECK(!strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
}

TEST(million_a_in_uneven_pieces) {
    sha256_ctx c;
    uint8_t d[32];
    char hex[65], chunk[997];
    memset(chunk, 'a', sizeof chunk);
    sha256_init(&c);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        sha256_update(&c, chunk, n);
        left -= n;
    }
    sha256_final(&c, d);
    sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

TEST(file_hash) {
    char path[] = "/tmp/tl_test_sha_XXXXXX", hex[65], hex2[65];
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "abc", 3) == 3);
    close(fd);
    sha256_ctx c;
    uint8_t d[32];
    sha256_init(&c);
    tl_error err;
    CHECK(!sha256_file(path, hex, &c, &err));
    sha256_final(&c, d);
    sha256_hex(d, hex2);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK(!strcmp(hex, hex2));
    unlink(path);
    CHECK(sha256_file(path, hex, NULL, &err) == TL_ERR_IO);
}

int main(void) {
    RUN(fips_vectors);
    RUN(million_a_in_uneven_pieces);
    RUN(file_hash);
    return th_done();
}
